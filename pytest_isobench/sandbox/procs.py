"""Subprocesses with hard time limits that take all their descendants down with them.

Every command runs under ``supervise.py``, a child subreaper: what the command leaves behind (daemons
that left its session with ``setsid``, double forks, processes that cleared their environment) stays
below the supervisor and ends with it. Each command also carries a unique token in its environment,
and its supervisor starts a new process group, as fallbacks where the supervisor itself is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import reaper
from .reaper import TOKEN_VAR, pids_with_token
from .supervise import descendants

SUPERVISOR = Path(__file__).with_name("supervise.py")
# How long a stopped supervisor may take to end its tree (it gives the tree 2 s, then kills).
SUPERVISOR_WAIT_S = 10.0


@dataclass(frozen=True)
class RunResult:
    """How a command ended; output goes to files, not memory."""

    returncode: int | None
    timed_out: bool
    duration_s: float
    stdout_path: Path
    stderr_path: Path
    stopped: str | None = None  # why the harness stopped the command early (e.g. disk_limit)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr_tail(self, lines: int = 20) -> str:
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def kill_tree(process: subprocess.Popen[bytes], token: str, grace_s: float = 2.0) -> None:
    """Stop a supervised command and everything below it.

    SIGTERM goes to the command's process group and every process carrying the token; the supervisor
    then ends the rest of its tree. If the supervisor does not finish in time, everything still found
    below it, in its group or with the token is killed.
    """
    _signal_group(process, token, signal.SIGTERM)
    deadline = time.monotonic() + grace_s + SUPERVISOR_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None and not pids_with_token(token):
            return
        time.sleep(0.05)
    for _ in range(50):
        below = descendants(process.pid) if process.poll() is None else []
        reaper.kill_all(below)
        _signal_group(process, token, signal.SIGKILL)
        time.sleep(0.05)
        if process.poll() is not None and not pids_with_token(token):
            return


def _signal_group(process: subprocess.Popen[bytes], token: str, sig: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
    reaper.kill_all(pids_with_token(token), sig)


class Process:
    """A background process (a benchmark server) owned by the harness."""

    def __init__(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: IO[bytes],
        stderr: IO[bytes] | int,
        stdin: IO[bytes] | None = None,
        kind: str = "server",
    ) -> None:
        self.token = uuid.uuid4().hex
        argv = [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), "--", "/bin/sh", "-c", command]
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**env, TOKEN_VAR: self.token},
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self.record = reaper.register(self.popen.pid, self.token, kind)

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        kill_tree(self.popen, self.token)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        reaper.unregister(self.record)


def run(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdout_path: Path,
    stderr_path: Path,
    stdin_path: Path | None = None,
    stop_check: Callable[[], str | None] | None = None,
    check_every_s: float = 1.0,
) -> RunResult:
    """Run ``sh -c command``; past ``timeout_s`` it and all its descendants are killed.

    ``stop_check`` (asked every ``check_every_s`` while the command runs) may return a reason to stop it
    early; the reason is the result's ``stopped``.
    """
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + timeout_s
    with (
        stdout_path.open("wb") as out,
        stderr_path.open("wb") as err,
        stdin_path.open("rb") if stdin_path else open(os.devnull, "rb") as stdin,
    ):
        process = Process(command, cwd=cwd, env=env, stdout=out, stderr=err, stdin=stdin, kind="command")
        timed_out = False
        stopped: str | None = None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                try:
                    process.popen.wait(timeout=min(remaining, check_every_s) if stop_check else remaining)
                    break
                except subprocess.TimeoutExpired:
                    if stop_check is not None and (stopped := stop_check()) is not None:
                        break
        except BaseException:  # Ctrl-C, SIGTERM: leave nothing running behind us
            process.stop()
            raise
        # Stragglers (daemons the command left behind) are stopped too.
        process.stop()
    returncode = None if timed_out or stopped else process.popen.returncode
    duration = time.monotonic() - start
    return RunResult(returncode, timed_out, duration, stdout_path, stderr_path, stopped)


__all__ = ["SUPERVISOR", "TOKEN_VAR", "Process", "RunResult", "kill_tree", "run"]
