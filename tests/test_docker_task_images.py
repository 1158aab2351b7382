"""Git tasks that run from task images, as vLLM and SGLang do: built for real, on a toy repository.

The toy repository has a "native" source (``csrc/kernel.c``) that a build step compiles into a module
(``work_native.py``, not ignored by git) the benchmark imports, as vLLM's CUDA kernels become ``_C``.
Its template is a test's own (``$ISOBENCH_DOCKER_DIR``); the variant layer is the project's.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.pipeline import InfrastructureError, Job, run_job
from pytest_isobench.sandbox import engine, images
from pytest_isobench.sandbox.docker import DockerSandbox
from pytest_isobench.sandbox.gitutil import git
from pytest_isobench.sandbox.repos import materialise
from pytest_isobench.tasks import LoadedTask
from support import BENCH_PY, load, make_tree
from test_docker_sandbox import docker_settings, need_docker

BUILD_NATIVE = '''\
"""The toy's extension build: compiles csrc/kernel.c's constant into a module."""
import pathlib, re

ms = int(re.search(r"STEP_DELAY_MS (\\d+)", pathlib.Path("csrc/kernel.c").read_text()).group(1))
pathlib.Path("work_native.py").write_text(f"STEP_DELAY = {ms / 1000}\\n")
'''
BASE_FILES = {
    ".gitignore": "__pycache__/\n",
    "csrc/kernel.c": "/* how long one step takes */\n#define STEP_DELAY_MS 60\n",
    "build_native.py": BUILD_NATIVE,
    "work.py": "import time\nfrom work_native import STEP_DELAY\n\n\ndef step():\n"
    "    time.sleep(STEP_DELAY)\n",
    "bench.py": BENCH_PY,
}
TEMPLATE = """\
FROM {{base_image}}
ADD src.tar /opt/src/
RUN git -C /opt/src init -q -b main && git -C /opt/src add --all --force \\
    && git -C /opt/src -c user.name=t -c user.email=t@t commit -q -m "Initial state"
WORKDIR /opt/src
RUN python build_native.py && mkdir -p build/obj && echo object > build/obj/kernel.o
LABEL isobench.src=/opt/src isobench.rebuild="cd /opt/src && python build_native.py"
"""


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


@pytest.fixture
def repo_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A repository family of the test's own: its template, with the project's variant layer."""
    name = "toy_" + secrets.token_hex(4)
    templates = tmp_path / "docker"
    templates.mkdir()
    (templates / f"{name}.Dockerfile").write_text(TEMPLATE)
    shutil.copy(images.template_dir() / "variant.Dockerfile", templates)
    monkeypatch.setenv(images.TEMPLATE_DIR_VAR, str(templates))
    yield name
    client = engine.client()
    for image in client.images.list(name=f"isobench/{name}"):
        for tag in image.tags:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)


def write_git_task(root: Path, repo: str, upstream: Path) -> Path:
    """A git task: an upstream repository with the base commit and the human fix (kernel.c, 60 -> 20 ms)."""
    make_tree(upstream, BASE_FILES)
    git("init", "--quiet", cwd=upstream, isolated=True)
    git("add", "--all", cwd=upstream, isolated=True)
    git("commit", "--quiet", "-m", f"base {repo}", cwd=upstream, isolated=True)
    base = git("rev-parse", "HEAD", cwd=upstream).stdout.strip()
    kernel = upstream / "csrc" / "kernel.c"
    kernel.write_text(kernel.read_text().replace("60", "20"))
    git("commit", "--quiet", "-am", "Shorter steps", cwd=upstream, isolated=True)
    human = git("rev-parse", "HEAD", cwd=upstream).stdout.strip()
    task_file = root / f"{repo}-{base[:8]}.toml"
    task_file.parent.mkdir(parents=True, exist_ok=True)
    task_file.write_text(
        textwrap.dedent(f"""\
        id = "{repo}-{base[:8]}"
        repo = "{repo}"
        repo_url = "{upstream}"
        title = "Shorter steps"
        base_commit = "{base}"
        human_commit = "{human}"
        description = "Each step waits longer than it needs to; the delay is set in the kernel source."
        target_files = ["csrc/kernel.c"]
        status = "ready"

        [benchmark]
        mode = "latency"
        command = "python bench.py --output-json {{result_dir}}/result.json"
        metric = "avg_latency"
        gpus = 0
        timeout_s = 60

        [benchmark.origin]
        command = {{ source = "curated", reason = "test task" }}
        metric = {{ source = "curated", reason = "test task" }}
        gpus = {{ source = "curated", reason = "test task" }}
        """)
    )
    return task_file


def image_job(tmp_path: Path, task_file: Path, spec: str) -> Job:
    run_id = "test-" + secrets.token_hex(4)
    settings = replace(
        docker_settings(tmp_path, base_image=images.DEFAULT_BASE_IMAGE),
        rounds=1,
        warmup=0,
        agent=spec,
        run_id=run_id,
    )
    agent = build_agent(spec, agent_registry([]))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, settings, run_id, DockerSandbox)


def test_an_agent_works_on_the_built_code_and_native_changes_are_rebuilt(
    tmp_path: Path, repo_name: str
) -> None:
    task_file = write_git_task(tmp_path / "tasks", repo_name, tmp_path / "upstream")
    task = load(task_file)
    probe = "python -c 'import work; print(\"built\", work.STEP_DELAY)'; git status --porcelain"
    probe += "; test -e build && echo build folder copied"
    job = image_job(tmp_path, task_file, f"command:{probe}; sed -i s/60/20/ csrc/kernel.c")
    outcome = run_job(job)
    assert outcome.status == "ok", outcome.error
    out = (job.artifacts / "agent.stdout.txt").read_text()
    # the working copy holds the image's build outputs (not its build folder), which import, and git
    # does not list them
    assert out.splitlines() == ["built 0.06"], out
    assert outcome.patch["files"] == ["csrc/kernel.c"]  # build outputs never enter the patch
    metrics = outcome.measured["metrics"]
    # the human and agent changes touch only kernel.c: measured faster only because it was rebuilt
    assert metrics["human"]["avg_latency"] < 0.6 * metrics["baseline"]["avg_latency"], metrics
    assert metrics["agent"]["avg_latency"] < 0.6 * metrics["baseline"]["avg_latency"], metrics
    assert outcome.hard != "failed", outcome.hard_detail  # agent vs human: one round decides by chance
    client = engine.client()
    variants = [t for image in client.images.list(name=f"isobench/{repo_name}") for t in image.tags]
    assert images.task_image_name(task) in variants
    built = [t for t in variants if t != images.task_image_name(task)]
    assert len(built) == 2 and all(
        client.images.get(t).labels["isobench.native_rebuild"] == "true" for t in built
    )
    assert engine.count_containers(job.run_id) == 0


def test_task_images_are_built_once_and_hold_no_later_history(tmp_path: Path, repo_name: str) -> None:
    task_file = write_git_task(tmp_path / "tasks", repo_name, tmp_path / "upstream")
    task = load(task_file)
    client = engine.client()
    settings = docker_settings(tmp_path, base_image=images.DEFAULT_BASE_IMAGE)
    repo = materialise(task, task_file, settings.cache_dir / "repos")
    name = images.ensure_task_image(client, task, settings, repo)
    first = client.images.get(name).id
    assert images.ensure_task_image(client, task, settings, repo) == name
    assert client.images.get(name).id == first  # reused, not rebuilt
    log = (
        settings.cache_dir / "images" / f"isobench-{repo_name}-{task.base_commit[:12]}.build.log"
    ).read_text()
    assert "build_native.py" in log
    history = client.containers.run(
        name,
        [
            "/bin/sh",
            "-c",
            "git -C /opt/src rev-list --all | wc -l;"
            f" git -C /opt/src cat-file -e {task.human_commit} || echo absent",
        ],
        remove=True,
        network_mode="none",
        labels=engine.labels("test", task.id, "check"),
    ).decode()
    assert history.split() == ["1", "absent"]  # one commit, and the human commit is not in the image


def test_a_failing_task_image_build_errors_the_task_and_keeps_its_log(tmp_path: Path, repo_name: str) -> None:
    template = images.template_dir() / f"{repo_name}.Dockerfile"
    broken = "RUN printf 'compiler says: %s\\n' broken; exit 3\n"
    template.write_text(TEMPLATE.replace("RUN python build_native.py", broken + "RUN python build_native.py"))
    task_file = write_git_task(tmp_path / "tasks", repo_name, tmp_path / "upstream")
    job = image_job(tmp_path, task_file, "noop")
    with pytest.raises(InfrastructureError, match=r"building isobench/toy_\w+:\w+ failed") as failed:
        run_job(job)
    log_file = re.search(r"build log: (\S+)\)", str(failed.value))
    assert log_file is not None and "compiler says: broken" in Path(log_file.group(1)).read_text()
    assert engine.count_containers(job.run_id) == 0
