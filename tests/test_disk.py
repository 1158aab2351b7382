"""Agents stop at their disk limit (stop reason disk_limit) and kept logs are capped to head and tail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_isobench.pipeline import run_job
from pytest_isobench.sandbox.disk import DiskWatchdog, cap_log, parse_size, tree_size
from support import write_source_task
from test_pipeline import job
from test_procs import alive

MB = 1024 * 1024


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=5)


@pytest.mark.parametrize(
    ("text", "size"),
    [("5m", 5 * MB), ("20g", 20 * 1024 * MB), ("1.5K", 1536), ("512", 512), ("2GB", 2 << 30)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_size_is_a_usage_error_naming_the_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--isobench-agent-disk=lots", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*--isobench-agent-disk: 'lots' is not a size such as 512m or 20g*"])


def test_size_counts_sparse_files_and_folders_made_unreadable(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "data").write_bytes(b"x" * MB)
    with (tmp_path / "sparse").open("wb") as handle:
        handle.truncate(64 * MB)  # no blocks, but git would read 64 MB of it
    hidden.chmod(0)
    try:
        assert tree_size([tmp_path]) >= 65 * MB
    finally:
        hidden.chmod(0o755)


def test_watchdog_measures_growth_not_what_was_there(tmp_path: Path) -> None:
    (tmp_path / "before").write_bytes(b"x" * 4 * MB)
    with DiskWatchdog([tmp_path], 2 * MB, every_s=3600) as watchdog:
        assert watchdog.measure() < MB and watchdog.check() is None
        (tmp_path / "after").write_bytes(b"x" * 3 * MB)
        assert watchdog.measure() >= 3 * MB and watchdog.check() == "disk_limit"


def test_cap_log_keeps_head_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "agent.stdout.txt"
    with log.open("w") as handle:
        for n in range(200_000):
            handle.write(f"line {n}\n")
    size = log.stat().st_size
    cut = cap_log(log, 100_000)
    text = log.read_text()
    lines = text.splitlines()
    assert lines[0] == "line 0" and lines[-1] == "line 199999"
    assert f"[isobench: {cut} bytes of this log cut here" in text
    assert len(text.encode()) < 100_000 + 200 and cut > size - 100_000 - 200
    assert all(line.startswith(("line ", "[isobench")) or not line for line in lines)  # cut at line ends
    assert cap_log(log, 100_000) == 0  # within the cap now: left alone


WRITER = """\
echo $$ > {pids}
i=0
while [ $i -lt 200 ]; do head -c 1048576 /dev/zero > junk$i.bin; i=$((i+1)); done
sleep 600
"""


def test_agent_past_its_disk_limit_is_stopped(tmp_path: Path, toy: Path) -> None:
    pids = tmp_path / "pids"
    script = tmp_path / "writer.sh"
    script.write_text(WRITER.format(pids=pids))
    spec = f"command:sh {script}"
    outcome = run_job(job(tmp_path, toy, spec, agent_disk_bytes=5 * MB, time_budget_min=20))
    run = outcome.agent_run
    assert run["stop_reason"] == "disk_limit" and not outcome.timed_out
    assert run["disk_limit_bytes"] == 5 * MB and run["disk_grown_bytes"] > 5 * MB
    assert outcome.patch["empty"]  # discarded, never diffed
    assert outcome.hard == "failed" and outcome.hard_reason == "disk_limit"  # its failure, unmeasured
    assert (Path(outcome.artifacts) / "patch.diff").read_text() == ""
    assert not alive(int(pids.read_text()))


def test_agent_logs_are_capped(tmp_path: Path, toy: Path) -> None:
    spec = "command:head -c 25000000 /dev/zero | tr '\\0' 'x' | fold -w 99; echo last line"
    outcome = run_job(job(tmp_path, toy, spec))
    log = Path(outcome.artifacts) / "agent.stdout.txt"
    assert log.stat().st_size < 10 * MB + 200
    assert outcome.agent_run["log_bytes_cut"]["agent.stdout.txt"] > 14 * MB
    with log.open("rb") as handle:
        handle.seek(-10, os.SEEK_END)
        assert handle.read() == b"last line\n"
