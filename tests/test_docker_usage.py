"""Selecting the docker backend: usage errors, GPU skips, Dockerfile templates and the cleanup command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_isobench.sandbox import images
from pytest_isobench.tasks import Task
from support import ANCHOR, load
from test_collection import task_text
from test_docker_sandbox import docker_settings, need_docker

ROOT = Path(__file__).resolve().parents[1]
NO_ENGINE = "unix:///nonexistent/isobench-docker.sock"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", **{"tasks/vllm/vllm-cccccccc": task_text("vllm-cccccccc", gpus=4)})
    pytester.makefile(".py", **{"tasks/test_isobench": ANCHOR})
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


def test_loading_the_plugin_does_not_import_docker() -> None:
    code = "import sys, pytest_isobench.plugin, pytest_isobench.sandbox.base as b; b.builtin_sandboxes(); "
    code += "assert 'docker' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unreachable_engine_is_a_usage_error_that_says_how_to_fix_it(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    result = suite.runpytest_subprocess("--isobench-backend=docker", "--isobench-agent=noop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-backend=docker: *cannot reach the Docker engine*docker info*"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--isobench-agent-network=wifi", "*'wifi' is not one of: auto, gateway, none, bridge*"),
        ("--isobench-agent-memory=lots", "*'lots' is not a size such as 512m or 16g*"),
        ("--isobench-gpus=0,0", "*names a GPU twice*"),
    ],
)
def test_bad_docker_options_are_usage_errors(suite: pytest.Pytester, option: str, message: str) -> None:
    result = suite.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_task_needing_more_gpus_than_listed_skips(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_docker()
    monkeypatch.setenv("ISOBENCH_PRUNE_MIN_FREE_GB", "0")  # --isobench-prune runs, and has room enough
    args = ("--isobench-backend=docker", "--isobench-gpus=fake0,fake1", "--isobench-prune")
    result = suite.runpytest("-rs", *args, "--isobench-agent=noop")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*vllm-cccccccc needs 4 GPU(s); 2 available*"])


def test_cleanup_without_an_engine_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "cleanup"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "cannot reach the Docker engine" in result.stderr


# -- images: names, labels and the Dockerfile templates (rendered, not built: no CUDA images here) ----


def real_task(name: str) -> Task:
    return load(next((ROOT / "tasks").glob(f"*/{name}.toml")))


def test_image_names_are_deterministic() -> None:
    task = real_task("vllm-015069b0")
    assert images.task_image_name(task) == "isobench/vllm:fbefc8a78d22"
    patch = "diff --git a/vllm/x.py b/vllm/x.py\n"
    assert images.variant_image_name(task, "agent", patch) == images.variant_image_name(task, "agent", patch)
    assert images.variant_image_name(task, "agent", patch).startswith("isobench/vllm:fbefc8a78d22-agent-")
    assert images.variant_image_name(task, "agent", patch + " ") != images.variant_image_name(
        task, "agent", patch
    )


def test_source_tasks_run_in_the_base_image(tmp_path: Path) -> None:
    smoke = real_task("smoke-serving")
    assert images.runtime_image(smoke, docker_settings(tmp_path)) == images.DEFAULT_BASE_IMAGE
    custom = docker_settings(tmp_path, base_image="example/py:3")
    assert images.runtime_image(smoke, custom) == "example/py:3"
    assert images.runtime_image(real_task("sglang-021f76e4"), custom).startswith("isobench/sglang:")


@pytest.mark.parametrize("name", ["vllm-015069b0", "sglang-021f76e4"])
def test_family_dockerfiles_render_for_the_base_commit(name: str, tmp_path: Path) -> None:
    task = real_task(name)
    text = images.task_dockerfile(task, docker_settings(tmp_path, base_image="example/cuda:12.4-py3"))
    assert "{{" not in text and text.startswith("# ISO-Bench task image")
    assert "FROM example/cuda:12.4-py3" in text
    # the tree comes from the build context (the harness's clone): the build clones nothing
    assert "ADD src.tar /opt/src/" in text and "git fetch" not in text and "git clone" not in text
    assert task.repo_url not in text and task.human_commit not in text
    # committed before the install, so build outputs are the untracked files
    assert text.index('commit -q -m "Initial state"') < text.index("pip install")
    assert f"isobench.base_commit={task.base_commit}" in text and "isobench.src=/opt/src" in text
    if task.repo == "vllm":
        assert f"vllm-wheels.s3.us-west-2.amazonaws.com/{task.base_commit}/" in text
        assert "VLLM_USE_PRECOMPILED=1" in text and "pip install --no-build-isolation -e ." in text
        assert 'isobench.rebuild="cd /opt/src && MAX_JOBS=' in text
    else:
        assert 'pip install -e "python[all]"' in text and task.import_root == "python"
        assert 'isobench.rebuild="cd /opt/src/sgl-kernel && MAX_JOBS=' in text
    default = images.task_dockerfile(task, docker_settings(tmp_path))
    assert f"FROM {images.DEFAULT_CUDA_IMAGE}" in default


def test_variant_layers_rebuild_extensions_only_for_native_changes() -> None:
    task = real_task("vllm-015069b0")
    python_only = "diff --git a/vllm/sampler.py b/vllm/sampler.py\n--- a/vllm/sampler.py\n"
    kernel = "diff --git a/csrc/attention/attn.cu b/csrc/attention/attn.cu\n--- a/csrc/attention/attn.cu\n"
    assert not images.touches_native(python_only)
    assert images.touches_native(kernel) and images.touches_native(
        "diff --git a/CMakeLists.txt b/CMakeLists.txt\n"
    )
    rebuild = "cd /opt/src && pip install --no-build-isolation -e ."  # the task image's label
    light = images.variant_dockerfile(task, "agent", python_only, rebuild=rebuild)
    heavy = images.variant_dockerfile(task, "agent", kernel, rebuild=rebuild)
    assert "FROM isobench/vllm:fbefc8a78d22" in light and "RUN true" in light and rebuild not in light
    assert f"RUN {rebuild}" in heavy and "isobench.native_rebuild=true" in heavy
    assert f"isobench.patch_sha256={images.patch_hash(kernel)}" in heavy
    # a native change on an image that cannot rebuild is refused, never measured unbuilt
    with pytest.raises(images.SandboxError, match=r"native sources.*isobench\.rebuild"):
        images.variant_dockerfile(task, "agent", kernel)


def test_rendering_refuses_missing_values() -> None:
    with pytest.raises(images.SandboxError, match="base_image"):
        images.render("FROM {{base_image}}\nRUN echo $PATH\n", {})
    assert images.render("FROM {{a}}\nRUN echo $PATH\n", {"a": "x"}) == "FROM x\nRUN echo $PATH\n"


def test_a_missing_template_for_vllm_or_sglang_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(images.TEMPLATE_DIR_VAR, "/nonexistent/isobench-docker")
    with pytest.raises(images.SandboxError, match=r"vllm\.Dockerfile is missing; point ISOBENCH_DOCKER_DIR"):
        images.family(real_task("vllm-015069b0"))
    assert images.family(real_task("smoke-serving")) is None  # source tasks need no template


def test_a_failed_session_end_cleanup_says_how_to_finish_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_isobench.sandbox import engine
    from pytest_isobench.sandbox.docker import DockerSandbox

    monkeypatch.setattr(engine, "_clients", {})  # no client yet: the next one meets the missing engine
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    DockerSandbox.end_session("run-7")
    assert "run `python -m pytest_isobench cleanup --run-id run-7`" in capsys.readouterr().err


def test_exclude_patterns_match_exactly_one_path() -> None:
    from pytest_isobench.sandbox.containergit import exclude_pattern

    assert exclude_pattern("vllm/_C.abi3.so") == "/vllm/_C.abi3.so"
    assert exclude_pattern("odd[1]*?.so") == "/odd\\[1]\\*\\?.so"


def test_a_reimported_docker_sdk_gets_its_own_client() -> None:
    """pytester restores sys.modules: errors then come from a new SDK import, and must be caught as such."""
    need_docker()
    from pytest_isobench.sandbox import engine

    first = engine.client()
    saved = {
        name: module for name, module in sys.modules.items() if name == "docker" or name.startswith("docker.")
    }
    try:
        for name in saved:
            del sys.modules[name]
        import docker.errors

        second = engine.client()
        assert second is not first and second is engine.client()
        with pytest.raises(docker.errors.ImageNotFound):
            second.images.get("isobench/none:missing")
    finally:
        for name in [n for n in sys.modules if n == "docker" or n.startswith("docker.")]:
            del sys.modules[name]
        sys.modules.update(saved)
