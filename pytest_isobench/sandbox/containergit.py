"""Git inside a container: the agent's fresh one-commit history, the leak check and the harness diff.

The same steps as the local backend (``local.py``), but run where the agent runs: the leak check sees
exactly what the agent's user sees, and the patch comes from a copy of the base history kept in a
root-only folder of the container's own filesystem, which the (non-root) agent can neither read nor
rewrite.
"""

from __future__ import annotations

from pathlib import Path

from .base import LeakError, SandboxError
from .containers import ROOT, Container
from .gitutil import FIXED_IDENTITY, ISOLATED_CONFIG
from .local import EXCLUDED_FROM_PATCH

HARNESS_DIR = "/isobench"  # root-only, in the container's own filesystem (not a mount)
HARNESS_GIT = f"{HARNESS_DIR}/harness.git"
# Root reads the agent's files: git must not refuse them as "dubious ownership", nor run hooks.
ROOT_GIT = ("git", "-c", "safe.directory=*", *ISOLATED_CONFIG)
GIT_ENV = {**FIXED_IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": HARNESS_DIR}


def _check(
    box: Container, argv: list[str], *, user: str, workdir: str, env: dict[str, str] | None = None
) -> str:
    code, out, err = box.capture(argv, user=user, workdir=workdir, env={**GIT_ENV, **(env or {})})
    if code != 0:
        raise SandboxError(
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


LEAK_SCRIPT = """
echo "COMMITS $(git rev-list --all --reflog | wc -l)"
git for-each-ref --format='REF %(refname)'
git remote | sed 's/^/REMOTE /'
if [ -e "$(git rev-parse --git-path objects/info/alternates)" ]; then echo ALTERNATES; fi
shift
printf '%s\\n' "$@" | git cat-file --batch-check | sed 's/^/OBJ /'
"""


def check_no_leak(box: Container, workdir: Path, forbidden: dict[str, str], *, user: str) -> None:
    """Prove, as the agent's user inside its container, that no git command reaches the human change."""
    out = _check(
        box, ["/bin/sh", "-c", LEAK_SCRIPT, "isobench-leak", "-", *forbidden], user=user, workdir=str(workdir)
    )
    problems, refs = [], []
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "COMMITS" and rest.strip() != "1":
            problems.append(f"history has {rest.strip()} commits, expected exactly one")
        elif kind == "REF":
            refs.append(rest)
        elif kind == "REMOTE":
            problems.append(f"the working copy has a remote {rest!r}")
        elif kind == "ALTERNATES":
            problems.append("the working copy borrows objects (alternates)")
        elif kind == "OBJ" and not rest.endswith(" missing"):
            obj = rest.split()[0]
            label = forbidden.get(obj, obj)
            problems.append(
                f"{label} ({obj}) is in the object store"
                if "version" in label
                else f"{label} {obj} is reachable"
            )
    if refs != ["refs/heads/main"]:
        problems.append(f"unexpected refs: {refs}")
    if problems:
        raise LeakError(f"the agent's working copy {workdir} leaks the future: " + "; ".join(problems))


def extract_patch(box: Container, workdir: Path, base: str) -> str:
    """The change in ``workdir`` against the base, diffed by root with the harness's own history copy."""
    env = {"GIT_INDEX_FILE": f"{HARNESS_DIR}/extract.index"}
    args = [*ROOT_GIT, "--git-dir", HARNESS_GIT, "--work-tree", str(workdir)]
    wd = str(workdir)
    try:
        _check(box, [*args, "read-tree", base], user=ROOT, workdir=wd, env=env)
        _check(box, [*args, "add", "--all", "--", ".", *EXCLUDED_FROM_PATCH], user=ROOT, workdir=wd, env=env)
        return _check(
            box,
            [
                *args,
                "diff",
                "--cached",
                "--binary",
                "--full-index",
                "--no-color",
                "--no-ext-diff",
                "--no-renames",
                base,
                "--",
            ],
            user=ROOT,
            workdir=wd,
            env=env,
        )
    finally:
        box.capture(["rm", "-f", env["GIT_INDEX_FILE"]], user=ROOT)
