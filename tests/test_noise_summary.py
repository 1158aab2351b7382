"""What the run learned about noise reaches the summary: inconclusive counts, unmeasurable human gains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_isobench.gate import gate_message
from pytest_isobench.report import RunCollector, _task_line, _task_row
from pytest_isobench.results import Outcome
from pytest_isobench.scoring import gain_not_measurable, render_table, summarize


def record(task: str, hard: str, *, inconclusive: bool = False, gain: bool | None = True) -> dict[str, Any]:
    detail = {
        "inconclusive": inconclusive,
        "rounds": {"agent": 20, "human": 20, "baseline": 5},
        "ci_pct": [-16.4, 1.6] if inconclusive else [-12.0, -9.0],
        "ci_note": None,
        "human_gain_measurable": gain,
        "band": 5.0,
    }
    return {"task_id": task, "repo": "vllm", "agent": "a", "hard": hard, "hard_pct": -7.4, "status": "ok",
            "hard_metric": "mean_ttft_ms", "quadrant": "unscored", "inconclusive": inconclusive,
            "hard_detail": detail}  # fmt: skip


def test_inconclusive_count_per_group_and_in_the_table() -> None:
    records = [record("t1", "worse", inconclusive=True), record("t2", "worse"), record("t3", "similar")]
    (group,) = summarize(records)
    assert group["inconclusive"] == 1
    header, row = render_table([group])
    assert header.split()[-1] == "inconcl." and row.split()[-1] == "1"


def test_task_line_and_failure_message_say_inconclusive_with_rounds_and_noise() -> None:
    line = _task_line(_task_row(record("t1", "worse", inconclusive=True)))
    assert line.endswith("unscored, inconclusive after 20 rounds: noise ±9 %")
    assert "inconclusive" not in _task_line(_task_row(record("t2", "worse")))
    detail = record("t1", "worse", inconclusive=True)["hard_detail"]
    outcome = Outcome(
        task_id="t1", repo="vllm", agent="a", run_id="r", hard="worse", hard_pct=-7.4,
        hard_metric="mean_ttft_ms", inconclusive=True, hard_detail=detail,
    )  # fmt: skip
    message = gate_message(outcome)
    assert "-7.4 % (needs ≥ -5 %), inconclusive after 20 rounds: noise ±9 %;" in message


def test_human_gain_not_measurable_is_listed(tmp_path: Path) -> None:
    records = [
        record("t1", "similar", gain=False),
        record("t2", "similar"),
        record("t3", "failed", gain=None),
    ]
    assert gain_not_measurable(records) == ["t1"]
    collector = RunCollector("run", tmp_path, "a")
    collector.records = {r["task_id"]: r for r in records}
    assert collector.summary()["human_gain_not_measurable"] == ["t1"]
