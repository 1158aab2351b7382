"""`python -m pytest_isobench summarize` rebuilds the paper's table from outcomes, running nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.scoring import quadrant

R = [
    # task, repo, agent, hard, bottleneck, extra
    ("v1", "vllm", "a", "worse", "different_target", {}),  # superseded by the later v1 line
    ("v1", "vllm", "a", "beats", "same_target", {"hard_pct": 12.5}),  # Q1
    ("v2", "vllm", "a", "similar", "related_target", {"inconclusive": True}),  # Q1, noise could flip it
    ("v3", "vllm", "a", "worse", "same_target", {}),  # Q2
    ("v4", "vllm", "a", "failed", "different_target", {"hard_pct": None}),  # Q4
    ("v5", "vllm", "a", "similar", "different_target", {"correctness": "fail"}),  # Q3, incorrect
    ("v6", "vllm", "a", "beats", None, {}),  # unscored
    ("v7", "vllm", "a", "worse", "same_target", {"quadrant": "Q4"}),  # a recorded quadrant is kept
    ("v8", "vllm", "a", "failed", "no_optimization", {"unknown_key": [1, 2]}),  # Q4
    ("s1", "sglang", "a", "similar", "related_target", {"inconclusive": True}),  # Q1
    ("s2", "sglang", "a", "worse", None, {"approach": None}),  # unscored
    ("s3", "sglang", "a", "beats", "same_target", {}),  # Q1
]
EXPECTED = [
    {
        "repo": "sglang",
        "agent": "a",
        "n": 3,
        "beats": 1,
        "similar": 1,
        "worse": 1,
        "failed": 0,
        "error": 0,
        "q1": 2,
        "q2": 0,
        "q3": 0,
        "q4": 0,
        "unscored": 1,
        "hard_success_pct": 66.7,
        "true_success_pct": 66.7,
        "gap_pct": 0.0,
        "right_target_pct": 66.7,
        "hard_pass_incorrect": 0,
        "inconclusive": 1,
    },
    {
        "repo": "vllm",
        "agent": "a",
        "n": 8,
        "beats": 2,
        "similar": 2,
        "worse": 2,
        "failed": 2,
        "error": 0,
        "q1": 2,
        "q2": 1,
        "q3": 1,
        "q4": 3,
        "unscored": 1,
        "hard_success_pct": 50.0,
        "true_success_pct": 25.0,
        "gap_pct": 12.5,
        "right_target_pct": 37.5,
        "hard_pass_incorrect": 1,
        "inconclusive": 1,
    },
]


@pytest.fixture
def outcomes(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "outcomes.jsonl"
    path.parent.mkdir()
    lines = [
        json.dumps({"task_id": t, "repo": r, "agent": a, "hard": h, "bottleneck": b, **x})
        for t, r, a, h, b, x in R
    ]
    path.write_text("\n".join(lines) + "\n\n")
    return path


def summarize(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "summarize", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_json_matches_the_hand_checked_table(outcomes: Path) -> None:
    for target in (outcomes, outcomes.parent):
        result = summarize(str(target), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"groups": EXPECTED, "agents": []}  # no agent spent anything


def test_text_table(outcomes: Path) -> None:
    result = summarize(str(outcomes))
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "repo",
        "agent",
        "tasks",
        "beats",
        "similar",
        "worse",
        "failed",
        "error",
        "Q1",
        "Q2",
        "Q3",
        "Q4",
        "unscored",
        "hard%",
        "true%",
        "gap%",
        "target%",
        "incorrect",
        "inconcl.",
    ]
    assert lines[1].split() == [
        "sglang",
        "a",
        "3",
        "1",
        "1",
        "1",
        "0",
        "0",
        "2",
        "0",
        "0",
        "0",
        "1",
        "66.7",
        "66.7",
        "0.0",
        "66.7",
        "0",
        "1",
    ]
    assert lines[2].split()[:3] == ["vllm", "a", "8"] and lines[2].split()[-6:] == [
        "50.0",
        "25.0",
        "12.5",
        "37.5",
        "1",
        "1",
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json}\n", "outcomes.jsonl:1: not JSON"),
        ('{"task_id": "x", "repo": "r", "agent": "a"}\n', "no 'hard' key"),
        ("[1]\n", "expected a JSON object"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(content)
    result = summarize(str(path))
    assert result.returncode == 2 and words in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = summarize(str(tmp_path))
    assert result.returncode == 2 and "no outcomes.jsonl here" in result.stderr


@pytest.mark.parametrize(
    ("hard", "bottleneck", "expected"),
    [
        ("beats", "same_target", "Q1"),
        ("similar", "related_target", "Q1"),
        ("worse", "related_target", "Q2"),
        ("failed", "same_target", "Q2"),
        ("beats", "different_target", "Q3"),
        ("similar", "no_optimization", "Q3"),
        ("worse", "different_target", "Q4"),
        ("failed", "no_optimization", "Q4"),
        ("beats", None, "unscored"),
        (None, "same_target", "Q2"),
    ],
)
def test_quadrant_rule(hard: str | None, bottleneck: str | None, expected: str) -> None:
    assert quadrant(hard, bottleneck) == expected


def test_long_agent_names_get_a_short_name_and_a_legend_in_the_text_table_only(tmp_path: Path) -> None:
    from pytest_isobench.pipeline import agent_slug

    agent = "replay:/very/long/path/to/some/predictions/of/a/model/preds.jsonl"
    path = tmp_path / "outcomes.jsonl"
    path.write_text(json.dumps({"task_id": "t", "repo": "r", "agent": agent, "hard": "beats"}) + "\n")
    lines = summarize(str(path)).stdout.splitlines()
    short = agent_slug(agent)  # the name of its artifacts folder
    assert lines[1].split()[:2] == ["r", short] and short.startswith("replay-")
    assert f"  {short} = {agent}" in lines
    assert json.loads(summarize(str(path), "--format", "json").stdout)["groups"][0]["agent"] == agent


def test_no_judge_shows_n_a_and_errors_have_a_column(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    rows = [
        {"task_id": "t1", "repo": "r", "agent": "a", "hard": "beats"},
        {"task_id": "t2", "repo": "r", "agent": "a", "hard": None, "status": "error", "error": "boom"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    header, row = summarize(str(path)).stdout.splitlines()[:2]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["tasks"] == "2" and cells["error"] == "1" and cells["beats"] == "1"
    assert cells["hard%"] == "50.0"
    assert cells["true%"] == cells["gap%"] == cells["target%"] == "n/a"
    [group] = json.loads(summarize(str(path), "--format", "json").stdout)["groups"]
    assert group["error"] == 1 and group["unscored"] == 2
    assert group["true_success_pct"] is group["gap_pct"] is group["right_target_pct"] is None


def test_a_torn_last_line_is_skipped_and_reported_and_the_next_append_starts_a_fresh_line(
    outcomes: Path,
) -> None:
    from pytest_isobench.results import Outcome, append_outcome, read_outcomes

    text = outcomes.read_text().rstrip("\n")
    torn = json.dumps({"task_id": "v9", "repo": "vllm", "agent": "a", "hard": "beats", "note": "é"})
    torn_bytes = torn.encode()[:-12] + "é".encode()[:1]  # cut mid-record, mid-character
    outcomes.write_bytes(text.encode() + b"\n" + torn_bytes)
    torn_line = len(text.splitlines()) + 1
    result = summarize(str(outcomes), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"groups": EXPECTED, "agents": []}
    assert f"warning: {outcomes}:{torn_line}: not JSON" in result.stderr
    append_outcome(outcomes.parent, Outcome(task_id="v9", repo="vllm", agent="a", run_id="r", hard="beats"))
    lines = outcomes.read_bytes().split(b"\n")
    assert lines[torn_line - 1] == torn_bytes, "the torn line stays as it was, alone"
    assert json.loads(lines[torn_line])["task_id"] == "v9", "the new record is on a line of its own"
    skipped: list[str] = []
    records = read_outcomes(outcomes, skipped)
    assert [r["hard"] for r in records if r["task_id"] == "v9"] == ["beats"]
    assert len(skipped) == 1 and skipped[0].startswith(f"{outcomes}:{torn_line}: not JSON")


def run(
    stop: str, tokens: list[int] | None, cost: float | None, source: str | None, turns: int
) -> dict[str, Any]:
    keys = ("input", "output", "cached")
    return {"returncode": 0, "timed_out": stop == "timeout", "duration_s": 60.0, "cli": "codex",
            "model": "gpt-5", "stop_reason": stop, "turns": turns,
            "tokens": None if tokens is None else dict(zip(keys, tokens, strict=True)),
            "cost_usd": cost, "cost_source": source}  # fmt: skip


SPENT = [
    # two runs combined: the later x1 line replaces the earlier one (the latest attempt per task)
    {"task_id": "x1", "agent": "codex", "agent_run": run("timeout", [9, 9, 9], 9.0, "price_table", 9)},
    {"task_id": "x1", "agent": "codex", "agent_run": run("completed", [1_000_000, 100_000, 600_000], 1.575,
                                                         "price_table", 12)},
    {"task_id": "x2", "agent": "codex", "agent_run": run("max_turns", [300_000, 20_000, 100_000], 0.6,
                                                         "cli", 40)},
    {"task_id": "x3", "agent": "codex", "status": "error",
     "error": "ModelApiError: codex: the model API failed: HTTP 429 rate limited"},
    {"task_id": "x1", "agent": "human", "agent_run": {"returncode": 0, "timed_out": False, "duration_s": 1}},
]  # fmt: skip


def test_summarize_shows_each_agents_spending(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps({"repo": "vllm", "hard": "similar", **r}) + "\n" for r in SPENT))
    lines = summarize(str(path)).stdout.splitlines()
    start = lines.index("agents' spending (latest attempt per task; USD; input tokens include the cached)")
    assert lines[start - 1] == "" and lines[start - 2].startswith("Q1 true success")
    header, codex, *notes = lines[start + 1 :]
    assert header.split()[:2] == ["agent", "attempts"] and header.split()[-1] == "ended"
    assert codex.split() == ["codex", "3", "2.1750", "1.0875", "mixed", "1300000", "120000", "700000", "52",
                             "completed", "1,", "max_turns", "1,", "api_error", "1"]  # fmt: skip
    assert notes == [
        "  codex: costs of mixed origin: 1 from the CLI, 1 priced from tokens (--isobench-prices)",
        "  codex: 1 attempt(s) without a cost (a model API error, no tokens recorded, or a model missing"
        " from the price table: --isobench-prices); the mean is over the 2 with one",
    ]
    (row,) = json.loads(summarize(str(path), "--format", "json").stdout)["agents"]
    assert row == {
        "agent": "codex",
        "attempts": 3,
        "models": ["gpt-5"],
        "cost_usd": 2.175,
        "mean_cost_usd": 1.0875,
        "priced": 2,
        "cost_sources": {"cli": 1, "price_table": 1},
        "tokens": {"input": 1_300_000, "output": 120_000, "cached": 700_000},
        "with_tokens": 2,
        "turns": 52,
        "duration_s": 120.0,
        "stop_reasons": {"completed": 1, "max_turns": 1, "api_error": 1},
    }
