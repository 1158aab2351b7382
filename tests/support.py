"""Helpers for the project's own tests: small real task repositories built in temporary folders."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

from pytest_isobench.sandbox.repos import build_source_repo
from pytest_isobench.tasks import Task, load_task_file

# A tiny latency benchmark: the base sleeps 60 ms per call, the human change 20 ms. Sleep-based timing
# keeps the verdicts stable on a loaded machine while still being a real measured run; the reported
# "average" is the median of three calls, so one late wake-up does not move it.
BENCH_PY = '''\
"""Latency benchmark printing vLLM's benchmark_latency.py format."""
import json, sys, time
import work

latencies = []
for _ in range(3):
    start = time.perf_counter()
    work.step()
    latencies.append(time.perf_counter() - start)
avg = sorted(latencies)[1]  # the middle of three: one late wake-up on a busy host does not count
print(f"Avg latency: {avg} seconds")
for p in (10, 50, 90, 99):
    value = sorted(latencies)[min(len(latencies) - 1, p * len(latencies) // 100)]
    print(f"{p}% percentile latency: {value} seconds")
if len(sys.argv) > 2 and sys.argv[1] == "--output-json":
    json.dump({"avg_latency": avg, "latencies": latencies, "percentiles": {}}, open(sys.argv[2], "w"))
'''
WORK_PY = '''\
"""The code under optimisation."""
import time

DELAY = 0.06


def step():
    time.sleep(DELAY)
'''


def make_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def diff_trees(before: dict[str, str | bytes], after: dict[str, str | bytes], tmp: Path) -> str:
    """A git diff (a/ b/ prefixes) turning tree `before` into tree `after`."""
    a, b = tmp / "a", tmp / "b"
    make_tree(a, before)
    make_tree(b, after)
    out = subprocess.run(
        [
            "git",
            "diff",
            "--no-index",
            "--binary",
            "--no-prefix",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "a",
            "b",
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
    )
    # `git diff --no-index a b` names paths a/<path> and b/<path> relative to tmp: strip the tree names.
    return out.stdout.replace("a/a/", "a/").replace("b/b/", "b/")


def write_source_task(
    root: Path,
    task_id: str,
    *,
    base: dict[str, str | bytes] | None = None,
    human: dict[str, str | bytes] | None = None,
    command: str = "python bench.py --output-json {result_dir}/result.json",
    metric: str = "avg_latency",
    mode: str = "latency",
    extra: str = "",
    group: str = "toy",
    timeout_s: float = 30,
    server: str | None = None,
) -> Path:
    """A complete source task (tree + fix.diff + task file with the right hashes) under root/group."""
    base = base if base is not None else {"bench.py": BENCH_PY, "work.py": WORK_PY}
    human = human if human is not None else {**base, "work.py": WORK_PY.replace("0.06", "0.02")}
    folder = root / group / task_id.replace("-", "_")
    shutil.rmtree(folder, ignore_errors=True)
    make_tree(folder / "base", base)
    with tempfile.TemporaryDirectory() as scratch:
        (folder / "fix.diff").write_text(diff_trees(base, human, Path(scratch)))
    task_file = root / group / f"{task_id}.toml"
    body = textwrap.dedent(f"""\
        id = "{task_id}"
        repo = "{group}"
        source = {{ tree = "{folder.name}/base", patch = "{folder.name}/fix.diff" }}
        title = "Speed up the step"
        base_commit = "{"0" * 40}"
        human_commit = "{"1" * 40}"
        description = "Each step waits longer than it needs to."
        target_files = ["work.py"]
        tags = ["toy"]
        status = "ready"

        [benchmark]
        mode = "{mode}"
        command = "{command}"
        metric = "{metric}"
        gpus = 0
        timeout_s = {timeout_s}
        {extra}

        [benchmark.origin]
        command = {{ source = "curated", reason = "test task" }}
        metric = {{ source = "curated", reason = "test task" }}
        gpus = {{ source = "curated", reason = "test task" }}
        """)
    if server is not None:
        body = body.replace("[benchmark.origin]", f'server = "{server}"\n\n[benchmark.origin]', 1)
        body += 'server = { source = "curated", reason = "test task" }\n'

    task_file.write_text(body)
    task = load_task_file(task_file)
    assert not hasattr(task, "message"), task
    with tempfile.TemporaryDirectory() as scratch:
        base_hash, human_hash = build_source_repo(task.task, task_file, Path(scratch) / "repo")  # type: ignore[union-attr]
    task_file.write_text(body.replace("0" * 40, base_hash).replace("1" * 40, human_hash))
    return task_file


def load(task_file: Path) -> Task:
    entry = load_task_file(task_file)
    assert not hasattr(entry, "message"), entry
    return entry.task  # type: ignore[union-attr]


ANCHOR = """\
from pytest_isobench import Outcome, require_hard_pass


def test_task(isobench_outcome: Outcome) -> None:
    require_hard_pass(isobench_outcome)
"""
