"""Live progress lines: printed while a task runs (before its result), in every mode; ``-q`` hides them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_isobench.progress import FileTail, append_event, format_line

DIST_MODES = {"single": [], "xdist2": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}
FAST = ["--isobench-rounds=2", "--isobench-warmup=0", "-p", "no:cacheprovider"]
LINE = re.compile(r"^(\[gw\d+\] )?isobench \d\d:\d\d:\d\d (?P<task>toy-\w+): (?P<message>.*)$")


def _result_index(lines: list[str], task_id: str) -> int:
    verdict = re.compile(r"\b(PASSED|FAILED)\b")
    return next(i for i, line in enumerate(lines) if f"[{task_id}]" in line and verdict.search(line))


def _ran_both(result: pytest.RunResult) -> None:
    """Both tasks ran to a verdict (human vs human may land outside the band on a loaded machine)."""
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, result.outlines


@pytest.mark.parametrize("mode", list(DIST_MODES))
def test_stage_and_round_lines_come_before_the_result(suite: pytest.Pytester, mode: str) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-v", *DIST_MODES[mode])
    _ran_both(result)
    lines = result.outlines
    for task_id in ("toy-one", "toy-two"):
        matches = [(i, LINE.match(line)) for i, line in enumerate(lines)]
        mine = [(i, m["message"]) for i, m in matches if m and m["task"] == task_id]
        messages = [message for _, message in mine]
        assert "preparing the task repository" in messages, lines
        assert any(message.startswith("agent human at work") for message in messages), messages
        assert any(message.startswith("measuring ") for message in messages), messages
        # one line per benchmark run: 2 rounds x 3 variants
        assert sum(bool(re.match(r"round-\d+ (agent|baseline|human)$", m)) for m in messages) == 6, messages
        assert max(i for i, _ in mine) < _result_index(lines, task_id), "\n".join(lines)
    if mode == "xdist2":
        assert all(line.startswith("[gw") for line in lines if "isobench " in line and LINE.match(line))
        (run,) = (suite.path / ".isobench" / "runs").iterdir()
        events = [json.loads(x) for x in (run / "progress.jsonl").read_text().splitlines()]
        assert {e["task"] for e in events} == {"toy-one", "toy-two"}


@pytest.mark.parametrize("mode", list(DIST_MODES))
def test_quiet_hides_progress(suite: pytest.Pytester, mode: str) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-q", *DIST_MODES[mode])
    _ran_both(result)
    assert not [line for line in result.outlines if LINE.match(line)], result.outlines


def test_progress_survives_without_the_terminal_reporter(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-p", "no:terminal", "-k", "toy-one")
    # Two rounds of identical code may land either side of the band on a busy machine: what matters is
    # that the run ends normally (passed or failed), not with an internal error.
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert not [line for line in result.outlines if LINE.match(line)]


def test_file_channel_reads_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    append_event(path, "old", "before the session", "gw0")
    tail = FileTail(path, path.stat().st_size)
    assert tail.read() == []
    append_event(path, "t1", "stage one", "gw1")
    with path.open("ab") as fh:
        fh.write(b'{"task": "t2", "message": "half')  # a line being written
    events = tail.read()
    assert [(e["task"], e["message"], e["worker"]) for e in events] == [("t1", "stage one", "gw1")]
    with path.open("ab") as fh:
        fh.write(b' done", "worker": "gw0"}\nnot json\n')
    assert [e["message"] for e in tail.read()] == ["half done"]


def test_line_format() -> None:
    assert LINE.match(format_line("toy-one", "checking correctness"))
    assert format_line("toy-one", "x", worker="gw3").startswith("[gw3] isobench ")
