"""Small, explicit wrappers around the git command line."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger("pytest_isobench")

# Commits the harness makes itself are reproducible: fixed identity and time, no user config.
FIXED_IDENTITY = {
    "GIT_AUTHOR_NAME": "ISO-Bench",
    "GIT_AUTHOR_EMAIL": "isobench@localhost",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "ISO-Bench",
    "GIT_COMMITTER_EMAIL": "isobench@localhost",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
ISOLATED_CONFIG = (
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.fileMode=true",
    "-c",
    "core.hooksPath=" + os.devnull,
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "gc.auto=0",
)


class GitError(RuntimeError):
    """A git command failed; the message holds the command and git's own words."""


def git(
    *args: str,
    cwd: Path,
    isolated: bool = False,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run git; ``isolated`` ignores user and system config and commits with a fixed identity."""
    full_env = dict(os.environ)
    if isolated:
        full_env.update(FIXED_IDENTITY)
    if env:
        full_env.update(env)
    argv = ["git", *(ISOLATED_CONFIG if isolated else ()), *args]
    data = input.decode("utf-8", "surrogateescape") if isinstance(input, bytes) else input
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=full_env,
        input=data,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        check=False,
    )
    if check and result.returncode != 0:
        raise GitError(
            f"`git {' '.join(args)}` in {cwd} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


def rev_parse(ref: str, cwd: Path) -> str:
    """Full hash of a ref."""
    return git("rev-parse", "--verify", "--quiet", ref + "^{commit}", cwd=cwd).stdout.strip()


def has_object(obj: str, cwd: Path) -> bool:
    """Whether an object exists in the repository at ``cwd``."""
    return git("cat-file", "-e", obj, cwd=cwd, check=False).returncode == 0


def git_bytes(*args: str) -> bytes:
    """Run git for its raw output (archives, binary diffs): no text decoding, no newline translation."""
    result = subprocess.run(["git", *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise GitError(
            f"`git {' '.join(args)}` failed ({result.returncode}): {result.stderr.decode().strip()}"
        )
    return result.stdout


class GitTimeout(GitError):
    """A git command ran past its time limit and was killed."""


def redact_url(text: str) -> str:
    """Text fit for messages: URLs lose their user name and password (``https://u:t@host`` → ``https://host``)."""
    return re.sub(r"([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@", r"\1", text)


def git_with_progress(
    *args: str,
    cwd: Path,
    timeout_s: float,
    what: str,
    progress: Callable[[str], None] | None = None,
    every_s: float = 10.0,
) -> None:
    """Run a long git command (clone, fetch) with ``--progress``; past ``timeout_s`` it is killed.

    Git's progress lines reach ``progress`` (at most one per ``every_s``, plus each new phase); when
    git says nothing for ``every_s``, a line says how long it has been waiting. ``what`` names the
    command in those lines and in errors. Raises GitTimeout or GitError.
    """
    say = progress or (lambda message: log.info("%s", message))
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    argv = ["git", *args]
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    lines: list[str] = []
    last_line = [time.monotonic()]

    def read() -> None:
        assert process.stderr is not None
        buffer = b""
        while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
            buffer += chunk
            *done, buffer = re.split(rb"[\r\n]", buffer)
            for raw in done:
                if line := redact_url(raw.decode("utf-8", "replace").strip()):
                    lines.append(line)
                    last_line[0] = time.monotonic()
        if buffer.strip():
            lines.append(redact_url(buffer.decode("utf-8", "replace").strip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    say(f"{what}: started (time limit {timeout_s:g} s)")
    start = time.monotonic()
    said, said_at, phase = 0, start, ""
    try:
        while True:
            try:
                process.wait(timeout=min(1.0, max(0.0, start + timeout_s - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - start >= timeout_s:
                heard = [line for line in lines if not line.startswith("Cloning into")]
                raise GitTimeout(
                    f"{what} timed out after {timeout_s:g} s"
                    + (f" (last from git: {heard[-1]})" if heard else " with no answer from the server")
                )
            if len(lines) > said:
                newest = lines[-1]
                new_phase = newest.split(":", 1)[0]
                if new_phase != phase or now - said_at >= every_s:
                    say(f"{what}: {newest}")
                    said, said_at, phase = len(lines), now, new_phase
            elif now - max(said_at, last_line[0]) >= every_s:
                say(f"{what}: no progress for {now - last_line[0]:.0f} s")
                said_at = now
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        reader.join(5)
        if process.stderr is not None:
            process.stderr.close()
    if process.returncode == 0:
        say(f"{what}: done" + (f" ({lines[-1]})" if len(lines) > said else ""))
    if process.returncode != 0:
        errors = [line for line in lines if not re.match(r"^[A-Z][a-z ]+:\s+\d+%", line)]
        raise GitError(f"{what} failed ({process.returncode}): {' '.join(errors[-5:])}")
