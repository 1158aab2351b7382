"""Subprocesses with hard time limits that take all their descendants down with them.

Every process the harness starts gets a unique token in its environment. Killing by token finds
children that left the process group (``setsid``) or were re-parented after a double fork, which a
plain ``killpg`` would miss.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TOKEN_VAR = "ISOBENCH_PROCESS_TOKEN"


@dataclass(frozen=True)
class RunResult:
    """How a command ended; output goes to files, not memory."""

    returncode: int | None
    timed_out: bool
    duration_s: float
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr_tail(self, lines: int = 20) -> str:
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _pids_with_token(token: str) -> list[int]:
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_tree(process: subprocess.Popen[bytes], token: str, grace_s: float = 2.0) -> None:
    """SIGTERM the process group and every process carrying the token, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        for pid in _pids_with_token(token):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if process.poll() is not None and not _pids_with_token(token):
                return
            time.sleep(0.05)


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
    ) -> None:
        self.token = uuid.uuid4().hex
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env={**env, TOKEN_VAR: self.token},
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        kill_tree(self.popen, self.token)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


def run(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdout_path: Path,
    stderr_path: Path,
    stdin_path: Path | None = None,
) -> RunResult:
    """Run ``sh -c command``; past ``timeout_s`` it and all its descendants are killed."""
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with (
        stdout_path.open("wb") as out,
        stderr_path.open("wb") as err,
        stdin_path.open("rb") if stdin_path else open(os.devnull, "rb") as stdin,
    ):
        process = Process(command, cwd=cwd, env=env, stdout=out, stderr=err, stdin=stdin)
        timed_out = False
        try:
            process.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # Ctrl-C: leave nothing running behind us
            process.stop()
            raise
        # Stragglers (daemons the command left behind) are stopped too.
        process.stop()
    returncode = None if timed_out else process.popen.returncode
    return RunResult(returncode, timed_out, time.monotonic() - start, stdout_path, stderr_path)
