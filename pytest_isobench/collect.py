"""Catalog entries → ``pytest.param`` objects, and the markers they use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from .tasks import BrokenTaskFile, CatalogEntry, no_tasks_message

BASE_MARKERS = {
    "isobench": "isobench(task, repo, mode): an ISO-Bench task item",
    "vllm": "a task from the vLLM repository",
    "sglang": "a task from the SGLang repository",
    "smoke": "a small CPU task that runs the whole pipeline on any machine",
    "serving": "the task's benchmark is a serving benchmark (client against a server)",
    "throughput": "the task's benchmark is an offline throughput benchmark",
    "latency": "the task's benchmark is a latency benchmark",
    "custom": "the task's benchmark is a custom command",
    "multi_gpu": "the task needs more than one GPU",
}
OUTCOME_MARKERS = {
    **{f"isobench_hard_{v}": f"outcome: hard verdict {v}" for v in ("beats", "similar", "worse", "failed")},
    **{f"isobench_{q}": f"outcome: quadrant {q}" for q in ("q1", "q2", "q3", "q4", "unscored")},
    "isobench_inconclusive": "outcome: the bootstrap interval straddles the ±5 % band",
    "isobench_timed_out": "outcome: the agent ran out of time",
    "isobench_error": "outcome: infrastructure error",
    "isobench_correctness_pass": "outcome: the agent's tree gives the same answers as the human's",
    "isobench_correctness_fail": "outcome: the agent's tree gives different answers",
}


def marker_lines(entries: Iterable[CatalogEntry]) -> list[str]:
    """``markers`` ini lines for the fixed markers plus every repo and tag the catalog uses."""
    lines = {name: f"{name}: {text}" for name, text in {**BASE_MARKERS, **OUTCOME_MARKERS}.items()}
    for entry in entries:
        if not isinstance(entry, BrokenTaskFile):
            for name in entry.task.marks:
                lines.setdefault(name, f"{name}: tasks tagged {name!r} in their task file")
    return [lines[name] for name in sorted(lines)]


def task_params(entries: list[CatalogEntry], roots: Sequence[Path]) -> list[object]:
    """The parameters of a test asking for ``isobench_task``; no task at all is a collection error
    naming where the plugin looked (pytest would otherwise skip with "got empty parameter set")."""
    if not entries:
        where = "; ".join(no_tasks_message(root) for root in roots)
        pytest.fail(
            f"isobench: {where}; point --isobench-tasks=PATH (or the ini option isobench_tasks) at a task"
            " file or a folder of them",
            pytrace=False,
        )
    return [to_param(entry) for entry in entries]


def to_param(entry: CatalogEntry) -> object:
    """One parameter per task file; a broken file still becomes an item (it errors at setup)."""
    if isinstance(entry, BrokenTaskFile):
        return pytest.param(
            entry, id=entry.id, marks=[pytest.mark.isobench(task=entry.id, repo=None, mode=None)]
        )
    task = entry.task
    marks = [pytest.mark.isobench(task=task.id, repo=task.repo, mode=task.benchmark.mode)]
    marks += [getattr(pytest.mark, name) for name in task.marks]
    if task.status != "ready":
        marks.append(pytest.mark.skip(reason=f"{task.id} is incomplete: {task.status_reason}"))
    return pytest.param(entry, id=task.id, marks=marks)
