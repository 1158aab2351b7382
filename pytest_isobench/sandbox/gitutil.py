"""Small, explicit wrappers around the git command line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

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
