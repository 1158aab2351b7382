"""Helpers for the Ray executor's tests: a local multi-node Ray cluster and a suite run against it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "tasks" / "smoke"
TEST_FILE = """\
from pytest_isobench import Outcome, require_hard_pass


def test_task(isobench_outcome: Outcome) -> None:
    require_hard_pass(isobench_outcome)
"""


@contextmanager
def environment(changes: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``changes`` inside the block (a node started there inherits them)."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def ray_cluster(
    node_dir: Path, nodes: Sequence[dict[str, Any]], envs: Sequence[dict[str, str]] | None = None
) -> Iterator[Any]:
    """A Ray cluster of local processes: the first entry is the head, each with fake GPUs and resources.

    The nodes keep their runs and caches under ``node_dir`` (one folder per node id); ``envs`` gives
    each node's processes extra environment variables.
    """
    from ray.cluster_utils import Cluster

    extra = list(envs or [{} for _ in nodes])
    with environment({"ISOBENCH_NODE_DIR": str(node_dir)}):  # the node processes inherit it
        head, *others = nodes
        with environment(extra[0]):
            cluster = Cluster(initialize_head=True, head_node_args={**head, "include_dashboard": False})
        try:
            for node, env in zip(others, extra[1:], strict=True):
                with environment(env):
                    cluster.add_node(**node)
            cluster.wait_for_nodes()
            yield cluster
        finally:
            cluster.shutdown()


def smoke_project(
    root: Path, gpus: dict[str, int] | None = None, extra: dict[str, int] | None = None
) -> Path:
    """A project with a copy of the smoke tasks: ``gpus`` gives tasks fake GPU needs; ``extra`` adds copies
    of smoke-latency under new ids with the given needs."""
    tasks = root / "tasks" / "smoke"
    shutil.copytree(SMOKE, tasks)
    (root / "test_isobench.py").write_text(TEST_FILE)
    for task_id, count in (gpus or {}).items():
        set_gpus(tasks / f"{task_id}.toml", count)
    for task_id, count in (extra or {}).items():
        text = (tasks / "smoke-latency.toml").read_text()
        copy = tasks / f"{task_id}.toml"
        copy.write_text(text.replace('id = "smoke-latency"', f'id = "{task_id}"', 1))
        set_gpus(copy, count)
    return root


def set_gpus(task_file: Path, count: int) -> None:
    text = re.sub(r"(?m)^gpus = \d+$", f"gpus = {count}", task_file.read_text(), count=1)
    task_file.write_text(text)


def suite_argv(project: Path, *args: str) -> list[str]:
    """The command line that runs the project's suite, its JSON report in ``report.json``."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "test_isobench.py",
        "-p",
        "no:cacheprovider",
        "--isobench-tasks=tasks",
        f"--isobench-runs-dir={project / 'runs'}",
        f"--isobench-cache-dir={project / 'cache'}",
        "--isobench-rounds=2",
        "--isobench-warmup=0",
        "--json-report",
        f"--json-report-file={project / 'report.json'}",
        *args,
    ]


def run_suite(
    project: Path, *args: str, timeout_s: float = 900
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    """``pytest`` on the project in a child process; its JSON report's tests by task id."""
    report = project / "report.json"
    report.unlink(missing_ok=True)
    result = subprocess.run(
        suite_argv(project, *args),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    if not report.is_file():
        raise AssertionError(f"no report; pytest said:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    tests = json.loads(report.read_text())["tests"]
    return result, {re.sub(r".*\[(.*)\]$", r"\1", t["nodeid"]): t for t in tests}


def outcome_of(test: dict[str, Any]) -> dict[str, Any]:
    """The outcome an item recorded (its ``isobench`` user property)."""
    for prop in test.get("user_properties", []):
        if "isobench" in prop:
            return dict(prop["isobench"])
    raise AssertionError(f"{test['nodeid']} recorded no outcome: {test}")
