"""The hard gate: the only place an outcome becomes a test failure."""

from __future__ import annotations

import pytest

from .results import Outcome
from .scoring import is_hard_pass


def gate_message(outcome: Outcome) -> str:
    """Why an outcome misses the hard gate, in one line a person can act on."""
    metric = outcome.hard_metric or "the primary metric"
    if outcome.hard == "failed":
        return f"{outcome.task_id}: agent {outcome.agent} failed ({outcome.hard_reason}) on {metric}"
    band = outcome.hard_detail.get("band", 5.0)
    return (
        f"{outcome.task_id}: agent {outcome.agent} is {outcome.hard} than the human change on {metric}:"
        f" {outcome.hard_pct:+.1f} % (needs ≥ -{band:g} %); artifacts in {outcome.artifacts}"
    )


def require_hard_pass(outcome: Outcome) -> None:
    """Fail the test unless the agent beats or matches the human change (the paper's hard gate)."""
    if not is_hard_pass(outcome.hard):
        pytest.fail(gate_message(outcome), pytrace=False)
