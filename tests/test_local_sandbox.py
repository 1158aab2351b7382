"""The local backend: the agent's working copy holds the base tree only; the harness computes the patch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_isobench.options import Settings
from pytest_isobench.sandbox.base import LeakError, PatchDoesNotApply, Sandbox, SandboxSpec
from pytest_isobench.sandbox.gitutil import git
from pytest_isobench.sandbox.local import LocalSandbox, check_no_leak
from pytest_isobench.sandbox.repos import materialise
from support import load, write_source_task

BASE = {
    "pkg/core.py": "def f():\n    return sum(range(10))\n",
    "pkg/old.py": "GONE = 1\n",
    "logo.bin": bytes(range(256)),
    "README": "toy\n",
}
HUMAN = {
    "pkg/core.py": "def f():\n    return 45\n",
    "pkg/fast.py": "SECRET_FAST_PATH = 'human only'\n",
    "logo.bin": bytes(range(256)),
    "README": "toy\n",
}


def settings(tmp_path: Path, keep: bool = False) -> Settings:
    return Settings(
        agent="noop",
        task_roots=(tmp_path,),
        explicit_task_roots=True,
        backend="local",
        rounds=1,
        warmup=0,
        time_budget_min=1,
        runs_dir=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
        run_id="r",
        remeasure=False,
        measure_lock="none",
        keep_work=keep,
        rootdir=tmp_path,
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> LocalSandbox:
    task_file = write_source_task(tmp_path / "tasks", "toy-leak", base=BASE, human=HUMAN)
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    return LocalSandbox(SandboxSpec(task, task_file, repo, tmp_path / "ws", settings(tmp_path)))


def check_full_patch(sandbox: Sandbox, patch: str) -> None:
    """The patch of an edit that adds pkg/new.py, deletes pkg/old.py and reverses logo.bin, applied."""
    assert "diff --git a/pkg/new.py b/pkg/new.py" in patch and "+NEW = True" in patch
    assert "deleted file mode" in patch and "a/pkg/old.py" in patch
    assert "GIT binary patch" in patch
    tree = sandbox.variant_tree("agent", patch)
    assert (tree / "pkg" / "new.py").read_text() == "NEW = True\n"
    assert not (tree / "pkg" / "old.py").exists()
    assert (tree / "logo.bin").read_bytes() == bytes(reversed(range(256)))


def test_workdir_holds_base_tree_with_one_fresh_commit(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    assert (workdir / "pkg" / "old.py").read_text() == "GONE = 1\n"
    assert not (workdir / "pkg" / "fast.py").exists()
    assert git("rev-list", "--all", cwd=workdir).stdout.split() == [sandbox.workdir_base]
    log = git("log", "--all", "--format=%s", cwd=workdir).stdout
    assert log.strip() == "Initial state"


def test_no_git_command_reaches_the_human_change(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    task = sandbox.task
    for obj in (task.human_commit, task.base_commit, f"{task.human_commit}^{{tree}}"):
        assert git("cat-file", "-e", obj, cwd=workdir, check=False).returncode != 0
    assert git("show", task.human_commit, cwd=workdir, check=False).returncode != 0
    everything = subprocess.run(
        "git cat-file --batch-all-objects --batch", shell=True, cwd=workdir, capture_output=True, check=True
    ).stdout
    assert b"SECRET_FAST_PATH" not in everything
    assert git("for-each-ref", cwd=workdir).stdout.count("\n") == 1
    assert not git("remote", cwd=workdir).stdout.strip()


def test_leak_check_catches_a_planted_human_blob(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    git("hash-object", "-w", "--stdin", cwd=workdir, input="SECRET_FAST_PATH = 'human only'\n")
    with pytest.raises(LeakError, match=r"human version of pkg/fast.py"):
        check_no_leak(workdir, sandbox.repo, sandbox.task.base_commit, sandbox.task.human_commit)


def test_leak_check_catches_fetched_history(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    git("fetch", "--quiet", str(sandbox.repo), sandbox.task.human_commit, cwd=workdir)
    with pytest.raises(LeakError, match="human commit"):
        check_no_leak(workdir, sandbox.repo, sandbox.task.base_commit, sandbox.task.human_commit)


def test_patch_covers_new_changed_deleted_and_binary_files(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    (workdir / "pkg" / "core.py").write_text("def f():\n    return 45\n")
    (workdir / "pkg" / "new.py").write_text("NEW = True\n")
    (workdir / "pkg" / "old.py").unlink()
    (workdir / "logo.bin").write_bytes(bytes(reversed(range(256))))
    patch = sandbox.extract_patch()
    check_full_patch(sandbox, patch)


def test_patch_excludes_scratch_and_the_agents_own_patch_file(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    (workdir / ".bench_scratch").mkdir()
    (workdir / ".bench_scratch" / "timing.py").write_text("print('t')\n")
    (workdir / "model_patch.diff").write_text("diff --git a/x b/x\n")
    (workdir / "pkg" / "__pycache__").mkdir()
    (workdir / "pkg" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0\1")
    assert sandbox.extract_patch() == ""


def test_patch_survives_an_agent_rewriting_its_history(sandbox: LocalSandbox) -> None:
    workdir = sandbox.agent_workdir()
    (workdir / "pkg" / "core.py").write_text("def f():\n    return 45\n")
    git("commit", "-qam", "mine", cwd=workdir, isolated=True)
    subprocess.run(["rm", "-rf", str(workdir / ".git")], check=True)
    patch = sandbox.extract_patch()
    assert "+    return 45" in patch and patch.count("diff --git") == 1


def test_variant_trees(sandbox: LocalSandbox) -> None:
    sandbox.agent_workdir()
    assert (sandbox.variant_tree("human") / "pkg" / "fast.py").exists()
    assert (sandbox.variant_tree("baseline") / "pkg" / "old.py").exists()
    assert not (sandbox.variant_tree("agent", "") / ".git").exists()


def test_a_patch_that_does_not_apply_is_refused_whole(sandbox: LocalSandbox) -> None:
    sandbox.agent_workdir()
    good = "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-toy\n+TOY\n"
    bad = "--- a/pkg/core.py\n+++ b/pkg/core.py\n@@ -1 +1 @@\n-def g():\n+def h():\n"
    with pytest.raises(PatchDoesNotApply):
        sandbox.variant_tree("agent", good + bad)
    assert (sandbox.workspace / "trees" / "agent" / "README").read_text() == "toy\n"  # nothing half-applied


def test_close_removes_the_workspace_unless_kept(sandbox: LocalSandbox, tmp_path: Path) -> None:
    sandbox.agent_workdir()
    sandbox.close()
    assert not sandbox.workspace.exists()


def nested_package_task(tmp_path: Path) -> Path:
    """A task whose package lives in python/ (as SGLang's does), with ``import_root = "python"``."""
    base = {"python/pkg/__init__.py": "WHERE = 'base'\n", "bench.py": "import pkg\nprint(pkg.WHERE)\n"}
    human = {**base, "python/pkg/__init__.py": "WHERE = 'human'\n"}
    task_file = write_source_task(tmp_path / "tasks", "toy-nested", base=base, human=human)
    text = task_file.read_text().replace('repo = "toy"\n', 'repo = "toy"\nimport_root = "python"\n', 1)
    task_file.write_text(text)
    return task_file


def test_variants_import_their_own_code_from_the_tasks_import_root(tmp_path: Path) -> None:
    task_file = nested_package_task(tmp_path)
    task = load(task_file)
    assert task.import_root == "python"
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    box = LocalSandbox(SandboxSpec(task, task_file, repo, tmp_path / "ws", settings(tmp_path)))
    for variant in ("baseline", "human"):
        tree = box.variant_tree(variant)
        env = box.environment(tree)
        assert env["PYTHONPATH"].split(":")[0] == str(tree / "python")
        # run from elsewhere: only PYTHONPATH can find the package
        out = subprocess.run(
            ["python", str(tree / "bench.py")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == {"baseline": "base", "human": "human"}[variant]
