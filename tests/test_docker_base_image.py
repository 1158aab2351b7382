"""The docker backend builds a missing base image on first use: once per host, with progress and a log.

The real build (debootstrap + docker import, about a minute) runs under a throw-away tag, so the
image the other docker tests use is never touched; a stand-in build script covers the failure path.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_isobench.sandbox import images
from test_docker_sandbox import need_docker

FAST = ["--isobench-rounds=1", "--isobench-warmup=0", "-p", "no:cacheprovider"]


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


def _remove_image(name: str) -> None:
    subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True, check=False)


def _wait_for_other_builds(limit_s: float = 900) -> None:
    """Two debootstraps at once would compete for the machine: wait for one already running."""
    deadline = time.monotonic() + limit_s
    while subprocess.run(["pgrep", "-x", "debootstrap"], capture_output=True, check=False).returncode == 0:
        if time.monotonic() > deadline:
            pytest.fail("another base-image build (debootstrap) is still running")
        time.sleep(5)


def test_missing_base_image_is_built_once_on_first_use(suite: pytest.Pytester) -> None:
    name = f"{images.BASE_IMAGE_REPOSITORY}:first-use-{secrets.token_hex(4)}"
    _wait_for_other_builds()
    try:
        result = suite.runpytest(
            "--isobench-agent=human",
            "--isobench-backend=docker",
            f"--isobench-base-image={name}",
            *FAST,
            "-n",
            "2",
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, result.outlines
        building = [line for line in result.outlines if f"building the base image {name}" in line]
        assert len(building) == 1, result.outlines  # one worker built it, the other waited and used it
        assert any(f"built the base image {name}" in line for line in result.outlines)
        assert any("build-base-image: docker import" in line for line in result.outlines)
        log = (
            suite.path
            / ".isobench"
            / "cache"
            / "images"
            / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".build.log")
        )
        assert "exit code 0" in log.read_text(), log
        labels = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"isobench.kind":"base"' in labels
    finally:
        _remove_image(name)


def test_a_build_that_cannot_succeed_errors_once_per_run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    calls = tmp_path / "calls"
    script = docker_dir / images.BASE_IMAGE_SCRIPT
    script.write_text(
        f'#!/bin/sh\necho "$1" >> {calls}\necho "build-base-image: no mirror reachable"\nexit 3\n'
    )
    monkeypatch.setenv(images.TEMPLATE_DIR_VAR, str(docker_dir))
    name = f"{images.BASE_IMAGE_REPOSITORY}:never-{secrets.token_hex(4)}"
    try:
        args = ["--isobench-agent=human", "--isobench-backend=docker", f"--isobench-base-image={name}", *FAST]
        result = suite.runpytest(*args, "-n", "2")
        result.assert_outcomes(errors=2)
        assert calls.read_text().splitlines() == [name]  # one attempt for the whole run, not one per task
        failure = f"building image {name} with {script} failed (exit code 3)"
        for task_id in ("toy-one", "toy-two"):
            result.stdout.fnmatch_lines([f"{task_id}: infrastructure error*{failure}*"])
        text = result.stdout.str()
        assert "no mirror reachable" in text
        # A new run tries again (the machine may have been fixed in between).
        suite.runpytest(*args, "-k", "toy-one").assert_outcomes(errors=1)
        assert calls.read_text().splitlines() == [name, name]
    finally:
        _remove_image(name)


def test_no_build_script_is_a_clear_error(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(images.TEMPLATE_DIR_VAR, str(tmp_path))
    name = f"{images.BASE_IMAGE_REPOSITORY}:never-{secrets.token_hex(4)}"
    result = suite.runpytest(
        "--isobench-agent=human", "--isobench-backend=docker", f"--isobench-base-image={name}", *FAST
    )
    result.assert_outcomes(errors=2)
    script = tmp_path / images.BASE_IMAGE_SCRIPT
    result.stdout.fnmatch_lines(
        [f"*image {name} is missing and cannot be built here: the build script {script} is*"]
    )


def test_other_images_are_not_built(suite: pytest.Pytester) -> None:
    name = f"isobench-test/elsewhere:{secrets.token_hex(4)}"
    result = suite.runpytest(
        "--isobench-agent=human",
        "--isobench-backend=docker",
        f"--isobench-base-image={name}",
        *FAST,
        "-k",
        "toy-one",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*image {name} is missing: pull or build it*"])
    assert not any("building the base image" in line for line in result.outlines)


def _blocker(script: Path, *, path: str = "/usr/sbin:/usr/bin:/sbin:/bin") -> str:
    """What ``base_image_blocker`` says in a fresh process with another PATH."""
    code = "import sys; from pathlib import Path; from pytest_isobench.sandbox import images;"
    code += " print(images.base_image_blocker(Path(sys.argv[1])))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(script)],
        env={"PATH": path, "HOME": "/"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_why_a_machine_cannot_build_the_base_image(tmp_path: Path) -> None:
    script = tmp_path / images.BASE_IMAGE_SCRIPT
    assert "the build script" in _blocker(script) and str(script) in _blocker(script)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    assert "neither debootstrap nor apt-get" in _blocker(script, path=str(empty))
    if os.geteuid() == 0:
        assert _blocker(script) == "None"
