"""Benchmark files: which paths a task's benchmark owns, and putting the reference's versions back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_isobench.measure.benchfiles import BenchmarkFiles, benchmark_patterns, glob_regex
from pytest_isobench.measure.parsers import parse_text, workload
from pytest_isobench.measure.runner import BenchRun
from pytest_isobench.measure.workload import check_workload
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.local import LocalSandbox, tree_patch
from pytest_isobench.sandbox.repos import materialise
from pytest_isobench.tasks import Task, load_task_file
from support import load, write_source_task
from test_local_sandbox import settings

BENCH = "print('Avg latency: 1.0 seconds')\n"
BASE = {
    "bench.py": BENCH,
    "work.py": "DELAY = 0.06\n",
    "benchmarks/client.py": "SCALE = 1\n",
    "benchmarks/run.sh": "#!/bin/sh\n",
    "test/test_work.py": "def test(): pass\n",
}


def bench(mode: str, command: str) -> dict[str, object]:
    return {"mode": mode, "command": command, "origin": {"command": {"source": "curated", "reason": "t"}}}


def vllm_like(**fields: object) -> Task:
    data: dict[str, object] = {
        "id": "vllm-00000001",
        "repo": "vllm",
        "repo_url": "https://example.invalid/vllm",
        "title": "t",
        "base_commit": "a" * 40,
        "human_commit": "b" * 40,
        "status": "incomplete",
        "status_reason": "test",
        "benchmark": {"mode": "serving"},
        **fields,
    }
    return Task.model_validate(data)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        (
            "benchmarks/**",
            ["benchmarks", "benchmarks/a.py", "benchmarks/k/b.py"],
            ["benchmarks2/a.py", "x/benchmarks"],
        ),
        ("python/sglang/bench_*.py", ["python/sglang/bench_serving.py"], ["python/sglang/srt/bench_x.py"]),
        ("**/conftest.py", ["conftest.py", "a/b/conftest.py"], ["a/conftest.pyc"]),
        ("b?.py", ["b1.py"], ["b12.py", "b/.py"]),
    ],
)
def test_globs(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_regex(pattern)
    assert all(regex.match(path) for path in matches)
    assert not any(regex.match(path) for path in misses)


def test_defaults_per_repository_and_the_files_the_command_runs() -> None:
    vllm = vllm_like(benchmark=bench("latency", "python3 benchmarks/benchmark_latency.py --n 1"))
    assert benchmark_patterns(vllm)[:2] == ["benchmarks/**", "vllm/benchmarks/**"]
    assert "benchmarks/benchmark_latency.py" in benchmark_patterns(vllm)
    sglang = vllm_like(
        repo="sglang",
        import_root="python",
        benchmark=bench("serving", "python -m sglang.bench_serving --port {port}"),
    )
    patterns = benchmark_patterns(sglang)
    assert {"benchmark/**", "python/sglang/bench_*.py", "python/sglang/bench_serving.py"} <= set(patterns)
    declared = vllm_like(benchmark_files=["tools/bench/**"], benchmark=bench("custom", "x"))
    assert benchmark_patterns(declared) == ["tools/bench/**"]


@pytest.mark.parametrize("glob", ["/abs/**", "../up/*.py", "", "a\\b"])
def test_a_benchmark_files_entry_outside_the_tree_is_rejected(glob: str) -> None:
    with pytest.raises(ValidationError, match="benchmark_files"):
        vllm_like(benchmark_files=[glob])


def test_the_smoke_tasks_protect_their_benchmark_folder() -> None:
    root = Path(__file__).resolve().parents[1] / "tasks" / "smoke"
    for name in ("smoke-latency", "smoke-serving", "smoke-throughput"):
        entry = load_task_file(root / f"{name}.toml")
        assert not hasattr(entry, "message"), entry
        assert "benchmarks/**" in benchmark_patterns(entry.task)  # type: ignore[union-attr]


@pytest.fixture
def files(tmp_path: Path) -> tuple[BenchmarkFiles, Path]:
    task_file = write_source_task(
        tmp_path / "tasks", "toy-bench", base=BASE, human={**BASE, "work.py": "DELAY = 0\n"}, group="smoke"
    )
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    return BenchmarkFiles(task, repo), repo


def test_which_paths_are_benchmark_files(files: tuple[BenchmarkFiles, Path]) -> None:
    guard, _ = files
    assert guard.is_benchmark_file("bench.py")  # the command runs it
    assert not guard.is_benchmark_file("work.py")
    # new top-level modules that would shadow what the benchmark imports
    for path in ("sitecustomize.py", "json.py", "numpy/__init__.py", "random/x.py", "time.cpython-311.so"):
        assert guard.is_benchmark_file(path), path
    # a folder of the reference tree named like a standard module (`test/`) is the project's own
    assert not guard.is_benchmark_file("test/test_work.py")
    assert not guard.is_benchmark_file("pkg/json.py")


def test_restore_undoes_every_kind_of_change(files: tuple[BenchmarkFiles, Path], tmp_path: Path) -> None:
    guard, repo = files
    sandbox = LocalSandbox(SandboxSpec(guard.task, Path("x"), repo, tmp_path / "ws", settings(tmp_path)))
    tree = sandbox.variant_tree("baseline")
    assert sandbox.benchmark_changes["baseline"] == []
    (tree / "bench.py").write_text("print('Avg latency: 1e-9 seconds')\n")  # rewritten
    (tree / "sitecustomize.py").write_text("import time\n")  # added, shadows
    os.chmod(tree / "benchmarks" / "run.sh", 0o755)  # mode changed
    (tree / "work.py").write_text("DELAY = 0.01\n")  # the agent's own code: kept
    (tree / "benchmarks" / "client.py").unlink()
    (tree / "benchmarks" / "client.py").symlink_to(tmp_path / "elsewhere.py")
    changed = guard.restore(tree)
    assert changed == ["bench.py", "benchmarks/client.py", "benchmarks/run.sh", "sitecustomize.py"]
    assert (tree / "bench.py").read_text() == BENCH and not (tree / "sitecustomize.py").exists()
    assert (tree / "benchmarks" / "client.py").read_text() == "SCALE = 1\n"
    assert not (tree / "benchmarks" / "client.py").is_symlink()
    assert not os.access(tree / "benchmarks" / "run.sh", os.X_OK)
    assert (tree / "work.py").read_text() == "DELAY = 0.01\n"
    assert guard.restore(tree) == []
    # a benchmark script replaced by a folder
    (tree / "bench.py").unlink()
    (tree / "bench.py").mkdir()
    (tree / "bench.py" / "x").write_text("x\n")
    assert guard.restore(tree) == ["bench.py"] and (tree / "bench.py").read_text() == BENCH
    # a benchmark folder replaced by a link to the agent's own copy
    outside = tmp_path / "fake"
    outside.mkdir()
    (outside / "client.py").write_text("SCALE = 100\n")
    for path in sorted((tree / "benchmarks").iterdir()):
        path.unlink()
    (tree / "benchmarks").rmdir()
    (tree / "benchmarks").symlink_to(outside)
    assert "benchmarks" in guard.restore(tree)
    assert (tree / "benchmarks").is_dir() and not (tree / "benchmarks").is_symlink()
    assert (tree / "benchmarks" / "client.py").read_text() == "SCALE = 1\n"
    assert (outside / "client.py").read_text() == "SCALE = 100\n"  # nothing outside the tree is written
    # what a docker variant image is built from: the restored tree's patch changes work.py only
    patch = tree_patch(repo, guard.task.base_commit, tree)
    assert [line for line in patch.splitlines() if line.startswith("diff --git")] == [
        "diff --git a/work.py b/work.py"
    ]


def test_touched_reads_paths_as_git_apply_does(files: tuple[BenchmarkFiles, Path]) -> None:
    guard, _ = files
    git_style = (
        "diff --git a/bench.py b/bench.py\n--- a/bench.py\n+++ b/bench.py\n"
        "@@ -1 +1 @@\n-print('Avg latency: 1.0 seconds')\n+print('Avg latency: 1e-9 seconds')\n"
    )
    assert guard.touched(git_style) == ["bench.py"]
    # a plain unified diff without a `diff --git` line is applied by git too
    plain = (
        "--- a/work.py\n+++ b/work.py\n@@ -1 +1 @@\n-DELAY = 0.06\n+DELAY = 0.02\n"
        + git_style.split("\n", 1)[1]
    )
    assert guard.touched(plain) == ["bench.py"]
    assert guard.touched("") == []


def test_workload_figures_are_parsed_and_compared() -> None:
    printed = parse_text("Successful requests: 16\nTotal input tokens: 4096\nTotal generated tokens: 256\n")
    assert workload(printed) == {
        "completed": 16,
        "successful_requests": 16,
        "total_input_tokens": 4096,
        "total_output_tokens": 256,
    }

    def runs(variant: str, output: float, rounds: int = 3) -> list[BenchRun]:
        return [
            BenchRun(variant, r, "ok", {"avg_latency": 1.0, "completed": 16, "total_output_tokens": output})
            for r in range(rounds)
        ]

    same = check_workload({"human": runs("human", 256), "agent": runs("agent", 256.0)})
    assert same is not None and same.changed == {}
    small_drift = check_workload({"human": runs("human", 1000), "agent": runs("agent", 995)})
    assert small_drift is not None and small_drift.changed == {}  # within the output-token tolerance
    fewer = check_workload({"human": runs("human", 256), "agent": runs("agent", 128)})
    assert fewer is not None and fewer.changed == {"total_output_tokens": {"human": 256, "agent": 128}}
    assert fewer.message() == "total_output_tokens 256 -> 128"
    assert check_workload({"human": runs("human", 256), "agent": []}) is None
