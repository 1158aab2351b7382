"""The executor Protocol: how an item's job is run, and where."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..options import Settings
    from ..pipeline import Job, Progress
    from ..results import Outcome


class Executor(Protocol):
    """Runs jobs for the items of one pytest session; pytest stays in charge of selection and reports.

    ``submit`` is called for every selected item at the start of the run (an executor may start the
    work there, or do nothing), with the job's ``progress`` callback: an executor that runs jobs
    elsewhere may pass their lines on through it as they come, from the thread that is in ``run``
    (pytest's main thread); ``run`` is called from each item's fixture and returns that item's
    outcome, raising ``pipeline.TaskSkipped`` or ``pipeline.InfrastructureError`` as ``run_job`` does;
    ``close`` cancels whatever is still running (also after Ctrl-C).
    """

    name: str

    def submit(self, job: Job, progress: Progress) -> None: ...

    def run(self, job: Job, progress: Progress) -> Outcome: ...

    def close(self) -> None: ...


ExecutorFactory = Callable[["str | None", "Settings"], Executor]
"""Builds an executor from the text after ``NAME:`` in ``--isobench-executor`` (or None) and the settings."""
