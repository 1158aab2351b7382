"""The docker backend against the real engine: the same behaviours as the local backend, in containers.

These tests skip with the reason when ``docker info`` fails or the base image is missing, unless
``ISOBENCH_REQUIRE_DOCKER`` is set: then they fail (CI sets it wherever an engine runs).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_isobench.options import Settings
from pytest_isobench.sandbox import engine, images
from pytest_isobench.sandbox.base import LeakError, PatchDoesNotApply, SandboxSpec
from pytest_isobench.sandbox.docker import DockerSandbox, agent_identity
from pytest_isobench.sandbox.gitutil import git
from pytest_isobench.sandbox.procs import RunResult
from pytest_isobench.sandbox.repos import materialise
from support import load, write_source_task
from test_local_sandbox import BASE, HUMAN, check_full_patch, nested_package_task
from test_local_sandbox import settings as local_settings

REQUIRE_VAR = "ISOBENCH_REQUIRE_DOCKER"


def docker_problem() -> str | None:
    """Why the docker tests cannot run here (no engine, no base image), or None."""
    problem = engine.engine_problem()
    if problem is None:
        import docker.errors

        try:
            engine.client().images.get(images.DEFAULT_BASE_IMAGE)
        except docker.errors.ImageNotFound:
            problem = f"the base image {images.DEFAULT_BASE_IMAGE} is missing: run docker/build-base-image.sh"
    return problem


def need_docker() -> None:
    """Skip without an engine; with ISOBENCH_REQUIRE_DOCKER set, fail instead (never a silent skip)."""
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_VAR, "").strip() not in ("", "0"):
        pytest.fail(f"{REQUIRE_VAR} is set, but: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


def docker_settings(tmp_path: Path, **overrides: object) -> Settings:
    return replace(local_settings(tmp_path), backend="docker", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[DockerSandbox]:
    task_file = write_source_task(tmp_path / "tasks", "toy-leak", base=BASE, human=HUMAN)
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    settings = docker_settings(tmp_path)
    run_id = "test-" + secrets.token_hex(4)  # containers are counted per run: unique under -n 2 too
    box = DockerSandbox(
        SandboxSpec(task, task_file, repo, settings.work_dir / run_id / task.id / "noop", settings)
    )
    yield box
    box.close()


def sh(box: DockerSandbox, command: str, cwd: Path, tmp: Path, timeout_s: float = 30) -> RunResult:
    """Run a command in the sandbox (in the container that holds ``cwd``)."""
    env = box.environment(None if cwd == box.workdir else cwd)
    return box.run(
        command,
        cwd=cwd,
        env=env,
        timeout_s=timeout_s,
        stdout_path=tmp / "out.txt",
        stderr_path=tmp / "err.txt",
    )


def test_workdir_holds_base_tree_with_one_fresh_commit(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    assert (workdir / "pkg" / "old.py").read_text() == "GONE = 1\n"
    assert not (workdir / "pkg" / "fast.py").exists()
    result = sh(sandbox, "git rev-list --all && git log --all --format=%s", workdir, tmp_path)
    assert result.returncode == 0, result.stderr_tail()
    assert result.stdout().split("\n")[:2] == [sandbox.workdir_base, "Initial state"]


def test_agent_runs_as_non_root_without_network(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    result = sh(sandbox, "id -u; touch mine && echo writable", workdir, tmp_path)
    assert result.stdout().split() == [str(agent_identity()[0]), "writable"]
    assert agent_identity()[0] != 0
    probe = "python -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), timeout=3)'"
    result = sh(sandbox, probe, workdir, tmp_path)
    assert result.returncode != 0 and "unreachable" in result.stderr_tail()


def test_agent_container_has_limits(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    result = sh(
        sandbox, "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null", workdir, tmp_path
    )
    assert result.stdout().split() == [str(sandbox.settings.agent_pids)]
    assert sandbox.agent is not None
    host = sandbox.agent.api.inspect_container(sandbox.agent.id)["HostConfig"]
    assert host["NetworkMode"] == "none" and host["Memory"] == 16 * 2**30 and host["NanoCpus"] > 0


def test_no_git_command_reaches_the_human_change(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    task = sandbox.task
    for obj in (task.human_commit, task.base_commit, f"{task.human_commit}^{{tree}}"):
        assert sh(sandbox, f"git cat-file -e {obj}", workdir, tmp_path).returncode != 0
    result = sh(sandbox, "git cat-file --batch-all-objects --batch", workdir, tmp_path)
    assert result.returncode == 0 and "SECRET_FAST_PATH" not in result.stdout()
    # the harness repository and the variant trees are not mounted in the agent's container
    result = sh(sandbox, f"ls {sandbox.repo} {sandbox.workspace / 'trees'}", workdir, tmp_path)
    assert result.returncode != 0


def test_leak_check_runs_in_the_container_and_catches_a_planted_blob(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    workdir = sandbox.agent_workdir()
    sh(sandbox, "echo \"SECRET_FAST_PATH = 'human only'\" | git hash-object -w --stdin", workdir, tmp_path)
    with pytest.raises(LeakError, match=r"human version of pkg/fast.py"):
        sandbox.check_no_leak()


def test_leak_check_catches_fetched_history(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    bundle, repo = workdir / "h.bundle", str(sandbox.repo)
    git("--git-dir", repo, "update-ref", "refs/heads/leak", sandbox.task.human_commit, cwd=tmp_path)
    git("--git-dir", repo, "bundle", "create", str(bundle), "leak", cwd=tmp_path)
    bundle.chmod(0o644)
    result = sh(sandbox, "git fetch --quiet h.bundle leak", workdir, tmp_path)
    assert result.returncode == 0, result.stderr_tail()
    with pytest.raises(LeakError, match="human commit"):
        sandbox.check_no_leak()


EDIT = """python - <<'EOF'
import pathlib
pathlib.Path('pkg/core.py').write_text('def f():\\n    return 45\\n')
pathlib.Path('pkg/new.py').write_text('NEW = True\\n')
pathlib.Path('pkg/old.py').unlink()
pathlib.Path('logo.bin').write_bytes(bytes(reversed(range(256))))
EOF"""


def test_patch_covers_new_changed_deleted_and_binary_files(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    assert sh(sandbox, EDIT, workdir, tmp_path).returncode == 0
    patch = sandbox.extract_patch()
    check_full_patch(sandbox, patch)


def test_patch_excludes_scratch_and_the_agents_own_patch_file(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    scratch = (
        "mkdir -p .bench_scratch pkg/__pycache__ && echo t > .bench_scratch/timing.py"
        " && echo x > model_patch.diff && printf 'a' > pkg/__pycache__/core.cpython-311.pyc"
    )
    assert sh(sandbox, scratch, workdir, tmp_path).returncode == 0
    assert sandbox.extract_patch() == ""


def test_patch_survives_an_agent_rewriting_its_history(sandbox: DockerSandbox, tmp_path: Path) -> None:
    workdir = sandbox.agent_workdir()
    rewrite = (
        "printf 'def f():\\n    return 45\\n' > pkg/core.py && git -c user.name=a -c user.email=a@b"
        " commit -qam mine && rm -rf .git"
    )
    assert sh(sandbox, rewrite, workdir, tmp_path).returncode == 0, (tmp_path / "err.txt").read_text()
    patch = sandbox.extract_patch()
    assert "+    return 45" in patch and patch.count("diff --git") == 1


def test_variant_trees_run_in_their_own_containers(sandbox: DockerSandbox, tmp_path: Path) -> None:
    sandbox.agent_workdir()
    human = sandbox.variant_tree("human")
    agent = sandbox.variant_tree("agent", "")
    assert (human / "pkg" / "fast.py").exists() and not (agent / ".git").exists()
    assert sandbox.agent is None  # the agent's container is gone once measuring starts
    result = sh(sandbox, "python -c 'import pkg.fast; print(pkg.fast.SECRET_FAST_PATH)'", human, tmp_path)
    assert result.stdout().strip() == "human only"
    # the agent variant's code cannot read the human tree
    result = sh(sandbox, f"cat {human / 'pkg' / 'fast.py'}", agent, tmp_path)
    assert result.returncode != 0
    assert len({box.id for _, box, _ in sandbox.boxes.values()}) == 2


def test_a_patch_that_does_not_apply_is_refused_whole(sandbox: DockerSandbox) -> None:
    sandbox.agent_workdir()
    good = "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-toy\n+TOY\n"
    bad = "--- a/pkg/core.py\n+++ b/pkg/core.py\n@@ -1 +1 @@\n-def g():\n+def h():\n"
    with pytest.raises(PatchDoesNotApply):
        sandbox.variant_tree("agent", good + bad)
    assert (sandbox.workspace / "trees" / "agent" / "README").read_text() == "toy\n"


def test_run_limits_time_and_kills_everything_it_started(sandbox: DockerSandbox, tmp_path: Path) -> None:
    sandbox.variant_tree("baseline")
    tree = sandbox.workspace / "trees" / "baseline"
    result = sh(sandbox, "(sleep 300 &) ; setsid sleep 301 & sleep 302", tree, tmp_path, timeout_s=1)
    assert result.timed_out and result.returncode is None and result.duration_s < 15
    left = sh(sandbox, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo", tree, tmp_path).stdout()
    assert "sleep 30" not in left and "sleep infinity" in left


def test_named_result_paths_are_copied_out(sandbox: DockerSandbox, tmp_path: Path) -> None:
    tree = sandbox.variant_tree("baseline")
    results = sandbox.settings.runs_dir / sandbox.run_id / "toy-leak" / "noop" / "bench" / "results"
    results.mkdir(parents=True)
    result = sh(sandbox, f"echo '{{\"x\": 1}}' > {results}/out.json", tree, tmp_path)
    assert result.returncode == 0, result.stderr_tail()
    assert (results / "out.json").read_text() == '{"x": 1}\n'


def test_close_removes_containers_and_workspace(sandbox: DockerSandbox) -> None:
    sandbox.agent_workdir()
    assert engine.count_containers(sandbox.run_id) == 1
    sandbox.variant_tree("baseline")
    sandbox.variant_tree("human")
    assert engine.count_containers(sandbox.run_id) == 2
    sandbox.close()
    assert engine.count_containers(sandbox.run_id) == 0
    assert not sandbox.workspace.exists()


def test_variants_import_their_own_code_from_the_tasks_import_root(tmp_path: Path) -> None:
    task_file = nested_package_task(tmp_path)
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    settings = docker_settings(tmp_path)
    workspace = settings.work_dir / ("test-" + secrets.token_hex(4)) / task.id / "noop"
    box = DockerSandbox(SandboxSpec(task, task_file, repo, workspace, settings))
    try:
        for variant, expected in (("baseline", "base"), ("human", "human")):
            tree = box.variant_tree(variant)
            # started from the folder above the tree: only PYTHONPATH can find the package
            result = sh(box, f"cd .. && python {tree / 'bench.py'}", tree, tmp_path)
            assert result.stdout().strip() == expected, result.stderr_tail()
    finally:
        box.close()
