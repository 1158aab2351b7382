"""Commands past their time limit die with every descendant, including ones that left the group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_isobench.sandbox import reaper
from pytest_isobench.sandbox.procs import Process, run


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
    # The supervisor ended its watchdog before it exited (else it would hang on as an orphan).
    assert not [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _is_orphan_watchdog(pid, tmp_path)
    ]


def wait_for(predicate: Callable[[], bool], seconds: float = 60) -> bool:
    """Poll until ``predicate`` holds (bounded; a loaded machine only makes it slower)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def marked(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(1000)\n"


def daemon_command(pids: Path, marker: str) -> str:
    """A daemon that leaves the session and clears its environment (so no token finds it)."""
    script = pids.with_name("sleeper.py")
    script.write_text(SLEEPER)
    return f"setsid sh -c 'env -i {sys.executable} {script} {pids} {marker} &'"


def test_daemon_that_clears_its_environment_is_stopped(tmp_path: Path) -> None:
    pids, marker = tmp_path / "pids", f"isobench-marker-{uuid.uuid4().hex}"
    result = run(
        f"{daemon_command(pids, marker)}; while [ ! -s {pids} ]; do sleep 0.05; done",
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=60,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
    )
    assert result.returncode == 0, result.stderr_tail()
    assert not alive(int(pids.read_text()))
    assert wait_for(lambda: not marked(marker), 10)


def test_timeout_stops_a_daemon_that_clears_its_environment(tmp_path: Path) -> None:
    pids, marker = tmp_path / "pids", f"isobench-marker-{uuid.uuid4().hex}"
    result = run(
        f"{daemon_command(pids, marker)}; while [ ! -s {pids} ]; do sleep 0.05; done; sleep 300",
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=3,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
    )
    assert result.timed_out
    assert pids.exists() and not alive(int(pids.read_text()))


def test_exit_status_of_a_signalled_command_is_kept(tmp_path: Path) -> None:
    result = run(
        "kill -9 $$",
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=30,
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
    )
    assert result.returncode == -9 and not result.timed_out


def test_stop_check_ends_the_command_with_its_reason(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    result = run(
        f"touch {flag}; sleep 300",
        cwd=tmp_path,
        env=dict(os.environ),
        timeout_s=120,
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
        stop_check=lambda: "too_big" if flag.exists() else None,
        check_every_s=0.1,
    )
    assert result.stopped == "too_big" and result.returncode is None and not result.timed_out


OWNER = """
import sys, time
from pathlib import Path
from pytest_isobench.sandbox import reaper
from pytest_isobench.sandbox.procs import Process
reaper.install(Path(sys.argv[1]))
process = Process(sys.argv[2], cwd=Path.cwd(), env={"PATH": "/usr/bin:/bin"}, stdout=sys.stderr.buffer,
                  stderr=sys.stderr.buffer)
print(process.popen.pid, flush=True)
time.sleep(1000)
"""


def watchdogs(supervisor: int) -> list[int]:
    """The supervisor's watchdog: its child that is still the supervisor's program (the command is ``sh``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                not entry.name.isdigit()
                or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != supervisor
            ):
                continue
            if b"supervise.py" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_a_supervisor_killed_by_sigkill_takes_the_command_and_its_daemons_with_it(tmp_path: Path) -> None:
    """What a Ray worker's death does to its children: SIGKILL, no chance to clean up; the watchdog does."""
    marker = f"isobench-marker-{uuid.uuid4().hex}"
    command = f"setsid sh -c 'sleep 1002; : {marker}' & sleep 1000 & sleep 1001; : {marker}"
    process = Process(
        command,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        supervisor = process.popen.pid
        assert wait_for(lambda: len(marked(marker)) >= 2)  # the shell and the daemon that left its session
        assert len(watchdogs(supervisor)) == 1
        os.kill(supervisor, signal.SIGKILL)
        process.popen.wait(30)
        assert wait_for(lambda: not marked(marker), 30), marked(marker)
        assert wait_for(lambda: not watchdogs(supervisor), 30)
    finally:
        process.stop()


def _is_orphan_watchdog(pid: int, cwd: Path) -> bool:
    try:
        return b"supervise.py" in Path(f"/proc/{pid}/cmdline").read_bytes() and os.readlink(
            f"/proc/{pid}/cwd"
        ) == str(cwd)
    except OSError:
        return False


def test_cleanup_ends_what_a_killed_harness_and_supervisor_left(tmp_path: Path) -> None:
    """The triple fault: harness, supervisor and watchdog all die by SIGKILL; the records remain."""
    records, marker = tmp_path / "cache" / "procs", f"isobench-marker-{uuid.uuid4().hex}"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(records), f"sleep 1000 & sleep 1001; : {marker}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        supervisor = int(owner.stdout.readline())
        assert wait_for(lambda: bool(set(marked(marker)) - {supervisor}))  # the shell, waiting
        assert len(list(records.glob("*.json"))) == 1
        kept = subprocess.run(
            [sys.executable, "-m", "pytest_isobench", "cleanup", "--backend=local", "--cache-dir", "cache"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "kept server" in kept.stdout and marked(marker)  # its harness is alive: not touched
        for watchdog in watchdogs(supervisor):
            os.kill(watchdog, signal.SIGKILL)
        os.kill(supervisor, signal.SIGKILL)
        owner.kill()
        owner.wait(30)
        left = marked(marker)
        assert left
        done = subprocess.run(
            [sys.executable, "-m", "pytest_isobench", "cleanup", "--backend=local", "--cache-dir", "cache"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"ended local process {left[0]}" in done.stdout
        assert wait_for(lambda: not marked(marker), 10)
        assert not list(records.glob("*.json"))
    finally:
        owner.kill()
        owner.wait(30)
        if owner.stdout is not None:
            owner.stdout.close()


def test_sigterm_becomes_keyboard_interrupt_until_uninstalled(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    reaper.install(tmp_path / "outer")
    reaper.install(tmp_path / "inner")  # pytest inside pytest: installs nest
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        process = Process("true", cwd=tmp_path, env={}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert [p.name for p in (tmp_path / "inner").iterdir()] == [f"{process.token}.json"]
        process.stop()
        assert not list((tmp_path / "inner").iterdir())
    finally:
        reaper.uninstall()
    assert signal.getsignal(signal.SIGTERM) is reaper._on_sigterm  # the outer install still holds
    reaper.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before
