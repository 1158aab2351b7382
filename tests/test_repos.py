"""Task repositories: clones from URLs or local paths (offline mirrors), cached; source tasks rebuilt."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_isobench.sandbox.gitutil import git
from pytest_isobench.sandbox.repos import RepoError, _slug, materialise
from pytest_isobench.tasks import Task
from support import ANCHOR, load, write_source_task
from test_task_models import GOOD


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, str, str]:
    """A real git repository with a base and a later 'human' commit."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "-q", cwd=repo, isolated=True)
    (repo / "engine.py").write_text("SLOW = True\n")
    git("add", "-A", cwd=repo, isolated=True)
    git("commit", "-qm", "base", cwd=repo, isolated=True)
    base = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    (repo / "engine.py").write_text("SLOW = False\n")
    git("commit", "-qam", "faster", cwd=repo, isolated=True)
    return repo, base, git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def url_task(url: str, base: str, human: str) -> Task:
    text = GOOD.replace("https://github.com/vllm-project/vllm", url)
    text = text.replace("3d925165f2b18379640a63fbb42de95440d63b64", base)
    text = text.replace("ad8d696a99ca1eee19f1404e16e8e82df592ff85", human)
    import tomllib

    return Task.model_validate(tomllib.loads(text))


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_clone_from_a_local_mirror_is_cached(
    tmp_path: Path, upstream: tuple[Path, str, str], form: str
) -> None:
    repo, base, human = upstream
    url = str(repo) if form == "path" else f"file://{repo}"
    task = url_task(url, base, human)
    cache = tmp_path / "cache"
    git_dir = materialise(task, tmp_path / "t.toml", cache)
    assert git("cat-file", "-t", human, cwd=git_dir).stdout.strip() == "commit"
    (repo / "engine.py").write_text("changed later\n")
    git("commit", "-qam", "later", cwd=repo, isolated=True)
    assert materialise(task, tmp_path / "t.toml", cache) == git_dir  # reused, not cloned again
    assert len([p for p in cache.iterdir() if p.suffix == ".git"]) == 1


def test_missing_commit_is_a_clear_error(tmp_path: Path, upstream: tuple[Path, str, str]) -> None:
    repo, base, _ = upstream
    task = url_task(str(repo), base, "e" * 40)
    with pytest.raises(RepoError, match=f"commit\\(s\\) {'e' * 40} not found"):
        materialise(task, tmp_path / "t.toml", tmp_path / "cache")


def test_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    task = url_task(str(tmp_path / "nowhere"), "a" * 40, "b" * 40)
    with pytest.raises(RepoError, match="neither a URL nor an existing path"):
        materialise(task, tmp_path / "t.toml", tmp_path / "cache")


def test_source_task_hashes_are_checked(tmp_path: Path) -> None:
    task_file = write_source_task(tmp_path / "tasks", "toy-hash")
    task = load(task_file)
    assert (materialise(task, task_file, tmp_path / "cache") / "HEAD").exists()
    task_file.write_text(task_file.read_text().replace(task.human_commit, "f" * 40))
    with pytest.raises(RepoError, match=r"human_commit: the sources build commit .* the file says f{40}"):
        materialise(load(task_file), task_file, tmp_path / "other-cache")


def test_bundled_catalog_collects_at_the_repo_root(pytester: pytest.Pytester) -> None:
    root = Path(__file__).resolve().parents[1]
    pytester.chdir()
    base = ["--collect-only", "-q", "-p", "no:cacheprovider", f"--rootdir={root}", str(root / "tasks")]

    def count(*extra: str) -> int:
        result = pytester.runpytest_subprocess(*base, *extra)
        return sum("::test_task[" in line for line in result.outlines)

    assert count() == 57
    assert count("-k", "sglang") == 15
    assert count("-m", "vllm") == 39
    assert count("-m", "smoke") == 3
    assert 0 < count("-m", "vllm and serving") < 39


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    done.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_clone_from_a_server_that_never_answers_times_out(
    tmp_path: Path, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_server
    task = url_task(f"http://isobench:s3cret-token@127.0.0.1:{port}/x.git", "a" * 40, "b" * 40)
    cache, lines = tmp_path / "cache", []
    with pytest.raises(RepoError, match=r"timed out after 3 s with no answer") as raised:
        materialise(task, tmp_path / "t.toml", cache, timeout_s=3, progress=lines.append)
    assert accepted  # git reached the server, which kept silent
    assert not list(cache.glob(".clone-*"))  # the temporary clone is gone
    assert "--isobench-clone-timeout" in str(raised.value)
    assert "s3cret-token" not in str(raised.value) + "".join(lines)


def test_clone_reports_progress_and_leaves_no_temporary_folder(
    tmp_path: Path, upstream: tuple[Path, str, str]
) -> None:
    repo, base, human = upstream
    cache, lines = tmp_path / "cache", []
    cache.mkdir()
    url = f"file://{repo}"
    stale = cache / f".clone-{_slug(str(repo))}-killed"  # left by a clone that was killed
    stale.mkdir()
    materialise(url_task(url, base, human), tmp_path / "t.toml", cache, progress=lines.append)
    assert lines and all(line.startswith(f"cloning {url} for task vllm-ad8d696a: ") for line in lines)
    assert not list(cache.glob(".clone-*"))


def test_clone_timeout_reaches_the_run(
    pytester: pytest.Pytester, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, _ = silent_server
    text = GOOD.replace("https://github.com/vllm-project/vllm", f"http://127.0.0.1:{port}/x.git")
    (pytester.path / "tasks" / "vllm").mkdir(parents=True)
    (pytester.path / "tasks" / "vllm" / "vllm-ad8d696a.toml").write_text(text.replace("gpus = 2", "gpus = 0"))
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    args = ("--isobench-agent=noop", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*args, "--isobench-clone-timeout=0.05")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot clone http://127.0.0.1:*timed out after 3 s*"])
    assert not list((pytester.path / ".isobench" / "cache" / "repos").glob(".clone-*"))
    result = pytester.runpytest_subprocess(*args, "--isobench-clone-timeout=soon")
    result.stderr.fnmatch_lines(["*--isobench-clone-timeout: 'soon' is not a valid float*"])


def test_fetch_of_missing_commits_from_a_silent_server_times_out(
    tmp_path: Path, upstream: tuple[Path, str, str], silent_server: tuple[int, list[socket.socket]]
) -> None:
    repo, base, _ = upstream
    port, accepted = silent_server
    url = f"http://127.0.0.1:{port}/x.git"
    cache = tmp_path / "cache"
    cache.mkdir()
    git("clone", "--bare", "-q", str(repo), str(cache / _slug(url)), cwd=tmp_path)  # cached, but stale
    task = url_task(url, base, "e" * 40)
    with pytest.raises(RepoError, match=r"fetching eeeeeeeeeeee from .* timed out after 2 s"):
        materialise(task, tmp_path / "t.toml", cache, timeout_s=2)
    assert accepted
