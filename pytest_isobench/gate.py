"""The hard gate: the only place an outcome becomes a test failure."""

from __future__ import annotations

from typing import Any

import pytest

from .results import Outcome
from .scoring import is_hard_pass


def gate_message(outcome: Outcome) -> str:
    """Why an outcome misses the hard gate, in one line a person can act on: the verdict, how the
    agent's run ended (exit code, time budget) and where the artifacts are."""
    metric = outcome.hard_metric or "the primary metric"
    ran = agent_ending(outcome.agent_run)
    if outcome.hard == "failed":
        return (
            f"{outcome.task_id}: agent {outcome.agent} failed ({outcome.hard_reason}) on {metric};"
            f" {ran}; artifacts in {outcome.artifacts}"
        )
    band = outcome.hard_detail.get("band", 5.0)
    return (
        f"{outcome.task_id}: agent {outcome.agent} is {outcome.hard} than the human change on {metric}:"
        f" {outcome.hard_pct:+.1f} % (needs ≥ -{band:g} %){inconclusive_text(outcome.hard_detail)}; {ran};"
        f" artifacts in {outcome.artifacts}"
    )


def agent_ending(agent_run: dict[str, Any]) -> str:
    """``agent exit code 0, within its time budget`` or ``agent timed out: ...``, from the recorded run."""
    if not agent_run:
        return "the agent did not run"
    code = agent_run.get("returncode")
    if agent_run.get("timed_out"):
        return "agent timed out: killed at its time budget" + ("" if code is None else f" (exit code {code})")
    return (
        "agent gave no exit code" if code is None else f"agent exit code {code}"
    ) + ", within its time budget"


def inconclusive_text(detail: dict[str, Any]) -> str:
    """ ", inconclusive after 20 rounds: noise ±9 %" when the verdict could be noise; else ""."""
    if not detail.get("inconclusive"):
        return ""
    counts = detail.get("rounds") or {}
    if not counts:
        return ", inconclusive"
    used = min(int(counts.get("agent", 0)), int(counts.get("human", 0)))
    interval = detail.get("ci_pct")
    if interval:
        why = f"noise ±{(interval[1] - interval[0]) / 2:.0f} %"
    else:
        why = str(detail.get("ci_note") or "no interval")
    return f", inconclusive after {used} rounds: {why}"


def require_hard_pass(outcome: Outcome) -> None:
    """Fail the test unless the agent beats or matches the human change (the paper's hard gate); with
    ``--isobench-correctness-gate`` also when its correctness check failed."""
    if not is_hard_pass(outcome.hard):
        pytest.fail(gate_message(outcome), pytrace=False)
    if outcome.correctness == "fail" and outcome.correctness_detail.get("gate"):
        pytest.fail(correctness_message(outcome), pytrace=False)


def correctness_message(outcome: Outcome) -> str:
    """Why a hard pass still fails under ``--isobench-correctness-gate``."""
    reason = outcome.correctness_detail.get("reason") or "the checks failed"
    return (
        f"{outcome.task_id}: agent {outcome.agent} passes the hard gate ({outcome.hard}) but is incorrect:"
        f" {reason} (--isobench-correctness-gate); artifacts in {outcome.artifacts}"
    )
