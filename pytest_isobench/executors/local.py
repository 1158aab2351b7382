"""The local executor: every job runs in the pytest process that runs its item (today's behaviour)."""

from __future__ import annotations

from ..options import Settings
from ..pipeline import Job, Progress, check_runnable, run_job
from ..results import Outcome


class LocalExecutor:
    """Runs a job when its item's fixture asks for it; nothing is submitted ahead."""

    name = "local"

    @classmethod
    def create(cls, arg: str | None, settings: Settings) -> LocalExecutor:
        if arg:
            raise ValueError(f"takes no argument (got {arg!r}): use --isobench-executor=local")
        return cls()

    def submit(self, job: Job, progress: Progress) -> None:
        """Nothing ahead: the job runs in ``run``."""

    def run(self, job: Job, progress: Progress) -> Outcome:
        check_runnable(job)
        return run_job(job, progress=progress)

    def close(self) -> None:
        """Nothing runs outside ``run``."""
