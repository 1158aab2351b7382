"""The executor's place in a pytest session: built at configure, fed the selected items, closed at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..keys import AGENT_KEY, EXECUTOR_KEY, EXTRA_JUDGES_KEY, RUN_ID_KEY, SANDBOX_KEY, SETTINGS_KEY
from ..progress import reporter
from ..tasks import LoadedTask

if TYPE_CHECKING:  # the pipeline is imported when a job is built, not when the plugin loads
    from ..pipeline import Job
    from .base import Executor


def configure(config: pytest.Config) -> None:
    """Build the executor ``--isobench-executor`` names (a listing with --collect-only needs none)."""
    settings = config.stash[SETTINGS_KEY]
    if settings.executor != "local" and hasattr(config, "workerinput"):
        return  # refused on the controller already (below); nothing to build in a worker
    if settings.executor != "local" and config.getoption("dist", "no") != "no":
        raise pytest.UsageError(
            f"--isobench-executor={settings.executor}: the executor spreads the tasks itself;"
            " drop pytest-xdist's -n/--dist"
        )
    if config.option.collectonly or settings.executor == "local":
        return  # the local executor is built when an item first asks (loading the plugin stays light)
    from .registry import build_executor, executor_registry

    registry = executor_registry(config.hook.pytest_isobench_executors())
    try:
        config.stash[EXECUTOR_KEY] = build_executor(settings.executor, registry, settings)
    except (ValueError, ImportError) as exc:
        hint = " (pip install 'pytest-isobench[ray]')" if isinstance(exc, ImportError) else ""
        raise pytest.UsageError(f"--isobench-executor={settings.executor}: {exc}{hint}") from None


def executor(config: pytest.Config) -> Executor:
    """This session's executor (the local one where no other was built)."""
    chosen = config.stash.get(EXECUTOR_KEY, None)
    if chosen is None:
        from .local import LocalExecutor

        chosen = config.stash[EXECUTOR_KEY] = LocalExecutor()
    return chosen


def job_for(config: pytest.Config, entry: LoadedTask) -> Job | None:
    """The job of one task in this session, or None without an agent."""
    from ..pipeline import Job

    extra_judges: dict[str, Any] = config.stash[EXTRA_JUDGES_KEY]
    agent = config.stash[AGENT_KEY]
    settings = config.stash[SETTINGS_KEY]
    if agent is None or settings.agent is None:
        return None
    # correctness kinds a conftest.py adds (pytest_isobench_correctness_checks)
    checks = {k: v for m in config.hook.pytest_isobench_correctness_checks() for k, v in m.items()}
    return Job(
        entry,
        agent,
        settings.agent,
        settings,
        config.stash[RUN_ID_KEY],
        config.stash[SANDBOX_KEY],
        extra_judges=extra_judges,
        extra_checks=checks,
    )


def submit_selected(config: pytest.Config, items: list[pytest.Item]) -> None:
    """At the start of the run: hand every selected item's job to the executor, in collection order."""
    chosen = config.stash.get(EXECUTOR_KEY, None)
    if chosen is None:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        entry = callspec.params.get("isobench_task") if callspec is not None else None
        if isinstance(entry, LoadedTask) and (job := job_for(config, entry)) is not None:
            chosen.submit(job, reporter(config, job.run_dir, job.task.id))


def unconfigure(config: pytest.Config) -> None:
    """Cancel what is still submitted and leave the cluster (also after Ctrl-C)."""
    chosen = config.stash.get(EXECUTOR_KEY, None)
    if chosen is not None:
        chosen.close()
        del config.stash[EXECUTOR_KEY]
