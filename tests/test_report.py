"""The controller's summary of judges: agreement on right target, unscored tasks, tokens and cost."""

from __future__ import annotations

from typing import Any

from pytest_isobench.report import _judge_line, judge_summary


def record(votes: list[bool | None], *, error: str | None = None, cost: float = 0.01) -> dict[str, Any]:
    right = None if all(v is None for v in votes) else votes[0]
    soft = {"specs": ["overlap", "openai:m"], "votes": votes, "right_target": right, "error": error,
            "cost_usd": cost, "input_tokens": 100, "output_tokens": 10}  # fmt: skip
    return {"task_id": "t", "repo": "r", "agent": "a", "hard": "similar", "soft": soft}


def test_agreement_unscored_and_cost_over_the_run() -> None:
    records = [
        record([True, True]),
        record([False, False]),
        record([True, False]),
        record([False, False]),
        record([None, None], error="HTTP 500 after 3 retries", cost=0.0),
        {"task_id": "u", "repo": "r", "agent": "a", "hard": "worse"},  # no judge ran for this one
    ]
    summary = judge_summary(records)
    assert summary is not None
    assert summary["tasks"] == 5 and summary["unscored"] == 1
    assert summary["errors"] == ["HTTP 500 after 3 retries"]
    assert summary["agreement"]["percent_agreement"] == 75.0  # 3 of the 4 tasks both judged
    assert summary["agreement"]["cohen_kappa"] == 0.5  # p_o .75, p_e .5
    assert summary["cost_usd"] == 0.04 and summary["input_tokens"] == 500
    line = _judge_line(summary)
    assert "agreement on right target 75.0 % (Cohen's kappa 0.50)" in line and "1 unscored" in line


def test_no_judges_no_summary() -> None:
    assert judge_summary([{"task_id": "t", "repo": "r", "agent": "a", "hard": "beats"}]) is None
