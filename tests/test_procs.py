"""Commands past their time limit die with every descendant, including ones that left the group."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_isobench.sandbox.procs import run


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status not in ("Z", "X")


def test_timeout_kills_children_and_escaped_grandchildren(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # One child in the group, one grandchild that escapes it with setsid, then the shell hangs.
    command = f"sleep 300 & echo $! >> {pids}; setsid sh -c 'echo $$ >> {pids}; exec sleep 300' & sleep 300"
    start = time.monotonic()
    result = run(
        command,
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=1.0,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
    )
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - start < 15
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    assert not any(alive(pid) for pid in children)


def test_daemon_left_behind_by_a_finished_command_is_stopped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    daemon = f"setsid sh -c 'echo $$ > {pids}; exec sleep 300' & while [ ! -s {pids} ]; do sleep 0.05; done"
    result = run(
        daemon,
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=30,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
    )
    assert result.returncode == 0 and not result.timed_out
    assert not alive(int(pids.read_text()))


def test_output_goes_to_files(tmp_path: Path) -> None:
    result = run(
        "echo out; echo err >&2; exit 3",
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=10,
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
    )
    assert result.returncode == 3
    assert result.stdout() == "out\n" and result.stderr_tail() == "err"
