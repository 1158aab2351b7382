"""Fixtures: the task of an item, and its outcome (the whole pipeline runs at setup)."""

from __future__ import annotations

import pytest

from .keys import SETTINGS_KEY, WIRE_KEY
from .options import Settings
from .progress import reporter
from .results import Outcome
from .tasks import BrokenTaskFile, LoadedTask

NO_AGENT = (
    "no agent selected: pass --isobench-agent=NAME (human, noop, replay:PATH, command:SHELL, ...)"
    " or set isobench_agent in the ini file"
)


@pytest.fixture(scope="session")
def isobench_settings(request: pytest.FixtureRequest) -> Settings:
    """The resolved ``--isobench-*`` settings of this process."""
    return request.config.stash[SETTINGS_KEY]


@pytest.fixture
def isobench_task(request: pytest.FixtureRequest) -> LoadedTask:
    """The task of this item (parametrised by the plugin); a broken task file errors here."""
    entry = getattr(request, "param", None)
    if entry is None:
        pytest.fail(
            "isobench_task is parametrised by the plugin from task files; do not use it directly",
            pytrace=False,
        )
    if isinstance(entry, BrokenTaskFile):
        pytest.fail(entry.message, pytrace=False)
    assert isinstance(entry, LoadedTask)
    return entry


@pytest.fixture
def isobench_outcome(request: pytest.FixtureRequest, isobench_task: LoadedTask) -> Outcome:
    """Run the agent on the task and measure it; the outcome is recorded before anything is asserted."""
    # Imported here: loading the plugin (collection, --help) should not pay for the whole pipeline.
    from .executors.plugin import executor, job_for
    from .pipeline import InfrastructureError, TaskSkipped

    config = request.config
    job = job_for(config, isobench_task)
    if job is None:
        pytest.skip(NO_AGENT)
    skipped = error = None
    try:
        outcome = executor(config).run(job, reporter(config, job.run_dir, job.task.id))
    except TaskSkipped as exc:
        skipped = str(exc)
    except InfrastructureError as exc:
        outcome, error = exc.outcome, str(exc)
    # Outside the except blocks, so the report shows our message and not a chained traceback.
    if skipped is not None:
        pytest.skip(skipped)
    _attach(request.node, outcome)
    if error is not None:
        pytest.fail(
            f"{job.task.id}: infrastructure error, not the agent's: {error};"
            f" artifacts in {outcome.artifacts}",
            pytrace=False,
        )
    return outcome


def _attach(item: pytest.Item, outcome: Outcome) -> None:
    """Record the outcome on the item: as a user property (crosses xdist) and as markers."""
    item.user_properties.append((WIRE_KEY, outcome.to_wire()))
    if outcome.status == "error":
        item.add_marker("isobench_error")
        return
    item.add_marker(f"isobench_hard_{outcome.hard}")
    item.add_marker(f"isobench_{outcome.quadrant.lower()}")
    if outcome.inconclusive:
        item.add_marker("isobench_inconclusive")
    if outcome.timed_out:
        item.add_marker("isobench_timed_out")
    if outcome.correctness in ("pass", "fail"):
        item.add_marker(f"isobench_correctness_{outcome.correctness}")
