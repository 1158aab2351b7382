"""Agents that attack the measurement, through the whole pipeline on the local backend.

Each agent is a ``command:`` shell script. Rewriting the benchmark (the script, its client, a module
that shadows what it imports) is undone before measuring and named in the outcome; changing the
workload fails the agent; destroying the working copy is the agent's failure, not an error.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_isobench.pipeline import run_job
from pytest_isobench.results import read_outcomes
from support import ANCHOR, BENCH_PY, WORK_PY, write_source_task
from test_pipeline import job

SMOKE = Path(__file__).resolve().parents[1] / "tasks" / "smoke"
# Today's attacks from the issue: the latency script reports 1 ns; the serving client scales TTFT.
FAKE_LATENCY = (
    "command:sed -i 's|avg_latency = sum(latencies) / len(latencies)|avg_latency = 1e-9|'"
    " benchmarks/benchmark_latency.py && grep -q 'avg_latency = 1e-9' benchmarks/benchmark_latency.py"
)
FAKE_TTFT = (
    "command:sed -i 's|output.ttft \\*= output.factor|output.ttft *= output.factor * 0.01|'"
    " benchmarks/benchmark_serving.py && grep -q 'factor \\* 0.01' benchmarks/benchmark_serving.py"
)
# A module that every Python process on the import path loads first: it slows the clock 1000 times.
SITECUSTOMIZE = (
    "command:printf 'import time\\n_real = time.perf_counter\\ntime.perf_counter = lambda: _real() / 1000\\n'"
    " > sitecustomize.py"
)


@pytest.mark.parametrize(
    ("task", "agent", "touched"),
    [
        ("smoke-latency", FAKE_LATENCY, ["benchmarks/benchmark_latency.py"]),
        ("smoke-serving", FAKE_TTFT, ["benchmarks/benchmark_serving.py"]),
    ],
)
def test_rewriting_the_smoke_benchmark_does_not_pass(
    tmp_path: Path, task: str, agent: str, touched: list[str]
) -> None:
    outcome = run_job(job(tmp_path, SMOKE / f"{task}.toml", agent, rounds=2, warmup=0))
    assert outcome.agent_run["returncode"] == 0  # the rewrite itself worked
    assert outcome.patch["files"] == touched and outcome.touches_benchmark == touched
    assert outcome.measured["benchmark_files_restored"]["agent"] == touched
    # measured with the reference script, the agent's code is the base code: far behind the human
    assert outcome.hard == "worse", outcome.hard_detail


def test_a_module_that_shadows_the_clock_is_removed(tmp_path: Path) -> None:
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=10)
    outcome = run_job(job(tmp_path, toy, SITECUSTOMIZE, rounds=2, warmup=0))
    assert outcome.touches_benchmark == ["sitecustomize.py"]
    assert outcome.hard == "worse" and outcome.hard_detail["medians"]["agent"] > 0.04, outcome.hard_detail


WORKLOAD_BENCH = (
    BENCH_PY + 'print("Successful requests: 3")\nprint(f"Total generated tokens: {work.TOKENS}")\n'
)


def test_an_engine_that_does_less_work_fails_with_workload_changed(tmp_path: Path) -> None:
    base = {"bench.py": WORKLOAD_BENCH, "work.py": WORK_PY + "\nTOKENS = 48\n"}
    human = {**base, "work.py": base["work.py"].replace("0.06", "0.02")}
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", base=base, human=human, timeout_s=10)
    # faster, because it generates half the tokens: a win on latency, not the same benchmark
    cheat = "command:sed -i -e s/0.06/0.01/ -e 's/TOKENS = 48/TOKENS = 24/' work.py"
    outcome = run_job(job(tmp_path, toy, cheat, rounds=2, warmup=0))
    assert outcome.hard == "failed" and outcome.hard_reason == "workload_changed", outcome.measured
    assert outcome.measured["workload"]["changed"] == {"total_output_tokens": {"human": 48, "agent": 24}}
    assert outcome.touches_benchmark == []
    honest = run_job(
        job(tmp_path, toy, "command:sed -i s/0.06/0.02/ work.py", rounds=2, warmup=0, run_id="r2")
    )
    assert honest.hard != "failed" and honest.measured["workload"]["changed"] == {}


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ('command:cd / && rm -rf "$ISOBENCH_WORKDIR"', "workdir_destroyed"),
        ("command:find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +", "workdir_destroyed"),
        # a nested repository without a commit: git refuses to add it, so no diff can be made
        ("command:mkdir sub && git init -q sub && echo x > sub/x", "workdir_destroyed"),
    ],
)
def test_destroying_the_working_copy_is_the_agents_failure(tmp_path: Path, agent: str, reason: str) -> None:
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=10)
    outcome = run_job(job(tmp_path, toy, agent))
    assert outcome.status == "ok" and outcome.hard == "failed" and outcome.hard_reason == reason
    assert outcome.agent_run["workdir_destroyed"]["reason"] == reason
    assert outcome.measured == {}  # nothing of the agent's to measure


def test_deleting_or_corrupting_dot_git_loses_nothing(tmp_path: Path) -> None:
    """The harness diffs against its own copy of the history: the agent's .git does not matter."""
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=10)
    agent = "command:sed -i s/0.06/0.02/ work.py && rm -rf .git && echo 'gitdir: /nowhere' > .git"
    outcome = run_job(job(tmp_path, toy, agent))
    assert outcome.status == "ok" and outcome.patch["files"] == ["work.py"]
    assert outcome.hard != "failed"


def test_a_full_disk_is_the_agents_failure(tmp_path: Path) -> None:
    """The agent fills the small file system its working copy lives on: the diff cannot be stored."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=10)
        fill = "command:head -c 100000000 /dev/urandom > fill.bin; true"
        outcome = run_job(job(tmp_path, toy, fill, cache_dir=disk / "cache"))
        assert outcome.status == "ok" and outcome.hard == "failed", outcome.agent_run
        assert outcome.hard_reason == "disk_full", outcome.agent_run
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_in_a_pytest_run_a_destroyed_working_copy_fails_and_a_crashed_worker_is_an_error_row(
    pytester: pytest.Pytester,
) -> None:
    for task_id in ("toy-one", "toy-two"):
        write_source_task(pytester.path / "tasks", task_id)
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    fast = ["--isobench-rounds=2", "--isobench-warmup=0", "-p", "no:cacheprovider"]
    result = pytester.runpytest('--isobench-agent=command:rm -rf "$ISOBENCH_WORKDIR"', *fast)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*toy-one*failed*(workdir_destroyed)*"])
    # The agent kills the pytest-xdist worker that runs it: no outcome, yet the task stays counted.
    # The agent's shell runs under the harness's supervisor, whose parent is the worker.
    killer = "--isobench-agent=command:kill -9 $(awk '{print $4}' /proc/$PPID/stat)"
    result = pytester.runpytest(killer, *fast, "-n", "2", "--json-report", "--json-report-file=r.json")
    result.stdout.fnmatch_lines(["*toy-one*error*crashed*", "*toy-two*error*crashed*"])
    summary = json.loads((pytester.path / "r.json").read_text())["isobench"]
    (group,) = summary["groups"]
    assert group["n"] == 2 and group["hard_success_pct"] == 0.0
    assert [row["status"] for row in summary["tasks"]] == ["error", "error"]
    rows = read_outcomes(Path(summary["run_dir"]))
    assert sorted((r["task_id"], r["status"]) for r in rows) == [("toy-one", "error"), ("toy-two", "error")]
