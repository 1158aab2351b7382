"""Task repositories: a cached git repository per task that holds its base and human commits.

Remote tasks are cloned once from ``repo_url`` (a URL, a local path or a ``file://`` URL, so mirrors
and offline copies work). Source tasks (the smoke suite) are built from a base tree and the human diff
into commits with a fixed identity and time, so their hashes are reproducible and checked against the
task file.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..tasks import Task
from .base import LeakError
from .gitutil import GitError, GitTimeout, git, git_with_progress, has_object, redact_url

SCRATCH_NAMES = ("__pycache__", ".pytest_cache", ".mypy_cache")


class RepoError(RuntimeError):
    """The task repository could not be made available; the message says why and what to do."""


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process on this host (pytest-xdist workers included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Cloning a real task repository (vLLM: about 1 GB) takes minutes; a server that stops answering
# must not hang the run.
DEFAULT_CLONE_TIMEOUT_S = 3600.0
# Below this many bytes per second for LOW_SPEED_TIME_S, git's HTTP transport gives up by itself.
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME_S = 120


def materialise(
    task: Task,
    task_file: Path,
    cache_dir: Path,
    *,
    timeout_s: float = DEFAULT_CLONE_TIMEOUT_S,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The git directory (under ``cache_dir``) of a repository holding the task's base and human commits.

    A clone or fetch past ``timeout_s`` is killed (RepoError); ``progress`` gets git's progress lines.
    """
    if task.source is not None:
        return _build_from_source(task, task_file, cache_dir)
    return _clone(task, cache_dir, timeout_s=timeout_s, progress=progress)


def _slug(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").removesuffix(".git").split("/")[-1]) or "repo"
    return f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:10]}.git"


def _clone(task: Task, cache_dir: Path, *, timeout_s: float, progress: Callable[[str], None] | None) -> Path:
    assert task.repo_url is not None
    url = task.repo_url.removeprefix("file://") if task.repo_url.startswith("file://") else task.repo_url
    shown = redact_url(task.repo_url)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", url) and not url.startswith("git@"):
        local = Path(url).expanduser()
        if not local.exists():
            raise RepoError(f"repo_url {shown!r} of task {task.id} is neither a URL nor an existing path")
        url = str(local.resolve())
    dest = cache_dir / _slug(url)
    speed = ("-c", f"http.lowSpeedLimit={LOW_SPEED_LIMIT}", "-c", f"http.lowSpeedTime={LOW_SPEED_TIME_S}")
    hint = "check the URL and the network, or raise --isobench-clone-timeout (minutes)"
    with file_lock(cache_dir / (dest.name + ".lock")):
        if not (dest / "HEAD").exists():
            # Under the lock no one else clones this repository: a temporary folder left by a killed
            # earlier clone can go.
            for stale in cache_dir.glob(f".clone-{dest.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".clone-{dest.name}-", dir=cache_dir))
            try:
                git_with_progress(
                    *speed,
                    "clone",
                    "--bare",
                    "--progress",
                    url,
                    str(tmp / "repo.git"),
                    cwd=cache_dir,
                    timeout_s=timeout_s,
                    what=f"cloning {shown} for task {task.id}",
                    progress=progress,
                )
                (tmp / "repo.git").rename(dest)
            except GitError as exc:
                raise RepoError(f"cannot clone {shown} for task {task.id}: {exc}; {hint}") from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        missing = [c for c in (task.base_commit, task.human_commit) if not has_object(c + "^{commit}", dest)]
        if missing:
            why = "fetch gave no error"
            try:
                git_with_progress(
                    *speed,
                    "fetch",
                    "--progress",
                    url,
                    *missing,
                    cwd=dest,
                    timeout_s=timeout_s,
                    what=f"fetching {', '.join(c[:12] for c in missing)} from {shown}",
                    progress=progress,
                )
            except GitTimeout as exc:
                raise RepoError(f"task {task.id}: {exc}; {hint}") from exc
            except GitError as exc:
                why = str(exc)
            still = [c for c in missing if not has_object(c + "^{commit}", dest)]
            if still:
                raise RepoError(
                    f"task {task.id}: commit(s) {', '.join(still)} not found in {shown}"
                    f" ({why}); check base_commit/human_commit"
                )
    return dest


def source_digest(task: Task, task_file: Path) -> str:
    """A hash of a source task's tree and patch, so edits rebuild the cached repository."""
    assert task.source is not None
    tree, patch = _source_paths(task, task_file)
    digest = hashlib.sha256()
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not _is_scratch(p.relative_to(tree))):
        digest.update(path.relative_to(tree).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(patch.read_bytes())
    return digest.hexdigest()[:16]


def _source_paths(task: Task, task_file: Path) -> tuple[Path, Path]:
    assert task.source is not None
    tree = (task_file.parent / task.source.tree).resolve()
    patch = (task_file.parent / task.source.patch).resolve()
    if not tree.is_dir():
        raise RepoError(f"{task_file}: source.tree: {tree} is not a directory")
    if not patch.is_file():
        raise RepoError(f"{task_file}: source.patch: {patch} is not a file")
    return tree, patch


def _is_scratch(relative: Path) -> bool:
    return any(part in SCRATCH_NAMES for part in relative.parts) or relative.suffix == ".pyc"


def build_source_repo(task: Task, task_file: Path, dest: Path) -> tuple[str, str]:
    """Build a source task's repository at ``dest``; return the (base, human) commit hashes."""
    tree, patch = _source_paths(task, task_file)
    dest.mkdir(parents=True)
    shutil.copytree(tree, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SCRATCH_NAMES, "*.pyc"))
    git("init", "--quiet", cwd=dest, isolated=True)
    git("add", "--all", cwd=dest, isolated=True)
    git("commit", "--quiet", "--no-verify", "-m", "base", cwd=dest, isolated=True)
    base = git("rev-parse", "HEAD", cwd=dest).stdout.strip()
    try:
        git("apply", "--index", "--whitespace=nowarn", str(patch), cwd=dest, isolated=True)
    except GitError as exc:
        raise RepoError(f"{task_file}: source.patch: {patch.name} does not apply to the tree: {exc}") from exc
    git("commit", "--quiet", "--no-verify", "-m", f"{task.title}", cwd=dest, isolated=True)
    human = git("rev-parse", "HEAD", cwd=dest).stdout.strip()
    return base, human


def _build_from_source(task: Task, task_file: Path, cache_dir: Path) -> Path:
    dest = cache_dir / f"{task.id}-{source_digest(task, task_file)}"
    with file_lock(cache_dir / (dest.name + ".lock")):
        if not (dest / ".git").exists():
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
            try:
                base, human = build_source_repo(task, task_file, tmp / "repo")
                for field, want, got in (
                    ("base_commit", task.base_commit, base),
                    ("human_commit", task.human_commit, human),
                ):
                    if want != got:
                        raise RepoError(
                            f"{task_file}: {field}: the sources build commit {got}, the file says {want};"
                            " after editing the sources, update the hashes"
                            f" (`python -m pytest_isobench hashes {task_file}` prints them)"
                        )
                (tmp / "repo").rename(dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest / ".git"


def forbidden_objects(repo: Path, base_commit: str, human_commit: str) -> dict[str, str]:
    """What of the human change the agent must not reach, {object id: what it is}, from the harness repo."""
    where = repo
    human_tree = git(
        "--git-dir", str(repo), "rev-parse", f"{human_commit}^{{tree}}", cwd=where
    ).stdout.strip()
    found = {human_commit: "the human commit", human_tree: "the human tree", base_commit: "the base commit"}
    base_blobs = set(
        git("--git-dir", str(repo), "ls-tree", "-r", "--object-only", base_commit, cwd=where).stdout.split()
    )
    raw = git(
        "--git-dir",
        str(repo),
        "diff-tree",
        "-r",
        "--no-renames",
        "--raw",
        base_commit,
        human_commit,
        cwd=where,
    )
    for line in raw.stdout.splitlines():
        fields = line.split("\t", 1)[0].split()
        if len(fields) < 5 or fields[4] == "D":
            continue
        if fields[3] not in base_blobs:
            found.setdefault(fields[3], f"the human version of {line.split(chr(9), 1)[1]}")
    return found


# What the agent's working copy must look like, asked of git where the agent runs (the host for the
# local backend, its container for docker): arguments are "-" then the forbidden object ids.
LEAK_SCRIPT = """
echo "COMMITS $(git rev-list --all --reflog | wc -l)"
git for-each-ref --format='REF %(refname)'
git remote | sed 's/^/REMOTE /'
if [ -e "$(git rev-parse --git-path objects/info/alternates)" ]; then echo ALTERNATES; fi
shift
printf '%s\\n' "$@" | git cat-file --batch-check | sed 's/^/OBJ /'
"""


def raise_if_leaking(workdir: Path, report: str, forbidden: dict[str, str]) -> None:
    """Read ``LEAK_SCRIPT``'s report: one commit, one branch, no remote, no borrowed or forbidden object."""
    problems, refs = [], []
    for line in report.splitlines():
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
            problems.append(f"{forbidden.get(obj, 'a forbidden object')} ({obj}) is reachable")
    if refs != ["refs/heads/main"]:
        problems.append(f"unexpected refs: {refs}")
    if problems:
        raise LeakError(f"the agent's working copy {workdir} leaks the future: " + "; ".join(problems))
