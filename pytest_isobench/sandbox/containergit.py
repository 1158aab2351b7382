"""Git inside a container: the agent's fresh one-commit history, the leak check and the harness diff.

The same steps as the local backend (``local.py``), but run where the agent runs: the leak check sees
exactly what the agent's user sees, and the patch comes from a copy of the base history kept in a
root-only folder of the container's own filesystem, which the (non-root) agent can neither read nor
rewrite.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import SandboxError
from .containers import ROOT, Container
from .gitutil import FIXED_IDENTITY, ISOLATED_CONFIG
from .local import patch_steps
from .repos import LEAK_SCRIPT, raise_if_leaking

HARNESS_DIR = "/isobench"  # root-only, in the container's own filesystem (not a mount)
HARNESS_GIT = f"{HARNESS_DIR}/harness.git"
# Root reads the agent's files: git must not refuse them as "dubious ownership", nor run hooks.
ROOT_GIT = ("git", "-c", "safe.directory=*", *ISOLATED_CONFIG)
GIT_ENV = {**FIXED_IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": HARNESS_DIR}


class GitFailed(SandboxError):
    """A git command in the container exited with an error (the caller decides whose fault it is)."""


def _check(
    box: Container, argv: list[str], *, user: str, workdir: str, env: dict[str, str] | None = None
) -> str:
    code, out, err = box.capture(argv, user=user, workdir=workdir, env={**GIT_ENV, **(env or {})})
    if code != 0:
        raise GitFailed(
            f"`{' '.join(argv[:6])} ...` in container {box.name} failed ({code}):"
            f" {err.decode(errors='replace').strip()}"
        )
    return out.decode("utf-8", "surrogateescape")


def init_history(box: Container, workdir: Path, *, user: str) -> tuple[str, str]:
    """One commit "Initial state" of everything in ``workdir``, made as the agent; (commit, tree)."""
    script = (
        'set -e; git "$@" init --quiet; git "$@" add --all --force;'
        ' git "$@" commit --quiet --no-verify -m "Initial state"; git rev-parse HEAD "HEAD^{tree}"'
    )
    out = _check(
        box, ["/bin/sh", "-c", script, "isobench-init", *ISOLATED_CONFIG], user=user, workdir=str(workdir)
    )
    commit, tree = out.split()
    # The harness keeps its own copy of the base history, out of the agent's reach.
    _check(
        box,
        [
            "/bin/sh",
            "-c",
            'set -e; rm -rf "$1"; mkdir -p "$(dirname "$1")"; chmod 700 "$(dirname "$1")";'
            ' cp -a "$2/.git" "$1"; chown -R 0:0 "$1"',
            "isobench-copy",
            HARNESS_GIT,
            str(workdir),
        ],
        user=ROOT,
        workdir="/",
    )
    return commit, tree


# Build outputs a task image's source folder holds beyond its commit, minus the build folders.
_BUILD_OUTPUTS = (
    'set -e; cd "$1"; git -c safe.directory=* ls-files -z --others'
    " -x '/build/' -x '/.eggs/' -x '*.egg-info/' -x '__pycache__/' -x '*.pyc' > \"$4\";"
    ' tar --null -T "$4" -cf - | tar -C "$2" -xf -;'
    ' find "$2" -user 0 -exec chown -h "$3" {} +; tr "\\0" "\\n" < "$4"; rm -f "$4"'
)


def copy_build_outputs(box: Container, src: str, workdir: Path, *, owner: str) -> list[str]:
    """Copy the untracked files of the image's git folder ``src`` into ``workdir``; their paths.

    ``src`` must be a git repository whose commit is the base tree (the task templates make it so).
    """
    argv = [
        "/bin/sh",
        "-c",
        _BUILD_OUTPUTS,
        "isobench-outputs",
        src,
        str(workdir),
        owner,
        f"{HARNESS_DIR}/outputs",
    ]
    code, out, err = box.capture(argv, user=ROOT, workdir="/")
    if code != 0:
        raise SandboxError(
            f"copying the build outputs of {src} into the working copy failed in container {box.name}"
            f" ({code}): {err.decode(errors='replace').strip()} (is {src} the image's git checkout?)"
        )
    return [line for line in out.decode("utf-8", "surrogateescape").splitlines() if line]


def exclude_pattern(path: str) -> str:
    """A gitignore line matching exactly this path from the top of the tree."""
    return "/" + re.sub(r"([*?\[\\])", r"\\\1", path)


def exclude_paths(box: Container, workdir: Path, paths: list[str]) -> None:
    """Keep ``paths`` out of the agent's status and out of the harness's patch (both exclude files)."""
    data = "".join(exclude_pattern(p) + "\n" for p in paths).encode("utf-8", "surrogateescape")
    listing = "/tmp/isobench-build-outputs.exclude"
    box.put_file(listing, data, uid=0, gid=0, mode=0o444)
    append = 'mkdir -p "$(dirname "$2")" && cat "$1" >> "$2"'
    _check(
        box, ["/bin/sh", "-c", append, "x", listing, f"{HARNESS_GIT}/info/exclude"], user=ROOT, workdir="/"
    )
    _check(
        box,
        ["/bin/sh", "-c", append, "x", listing, str(workdir / ".git" / "info" / "exclude")],
        user=box.user,
        workdir=str(workdir),
    )


def check_no_leak(box: Container, workdir: Path, forbidden: dict[str, str], *, user: str) -> None:
    """Prove, as the agent's user inside its container, that no git command reaches the human change."""
    out = _check(
        box, ["/bin/sh", "-c", LEAK_SCRIPT, "isobench-leak", "-", *forbidden], user=user, workdir=str(workdir)
    )
    raise_if_leaking(workdir, out, forbidden)


def extract_patch(box: Container, workdir: Path, base: str) -> str:
    """The change in ``workdir`` against the base, diffed by root with the harness's own history copy."""
    env = {"GIT_INDEX_FILE": f"{HARNESS_DIR}/extract.index"}
    args = [*ROOT_GIT, "--git-dir", HARNESS_GIT, "--work-tree", str(workdir)]
    wd = str(workdir)
    try:
        out = ""
        for step in patch_steps(base):
            out = _check(box, [*args, *step], user=ROOT, workdir=wd, env=env)
        return out
    finally:
        box.capture(["rm", "-f", env["GIT_INDEX_FILE"]], user=ROOT)
