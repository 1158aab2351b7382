"""Variant layers built for real on the registry-free base image; reuse by name; pruning by last use."""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_isobench.sandbox import engine, images
from support import load, write_source_task
from test_docker_sandbox import docker_settings, need_docker
from test_local_sandbox import BASE, HUMAN

TASK_IMAGE = """\
FROM {base}
COPY src.tar /tmp/src.tar
RUN mkdir -p /opt/src && tar -C /opt/src -xf /tmp/src.tar && rm /tmp/src.tar \\
    && git -C /opt/src init -q && git -C /opt/src add --all \\
    && git -C /opt/src -c user.name=t -c user.email=t@t commit -q -m "Initial state"
LABEL isobench.owner=pytest-isobench isobench.kind=task
"""


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


@pytest.fixture
def scratch_tags() -> Iterator[list[str]]:
    """Tags the test creates; removed afterwards whatever happened."""
    tags: list[str] = []
    yield tags
    for tag in reversed(tags):
        with contextlib.suppress(Exception):
            engine.client().images.remove(tag, force=True)


def tree_tar(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_variant_layer_applies_the_patch_offline_and_is_reused(
    tmp_path: Path, scratch_tags: list[str]
) -> None:
    client = engine.client()
    task = load(write_source_task(tmp_path / "tasks", "toy-leak", base=BASE, human=HUMAN))
    task_image = f"isobench/test-task:{secrets.token_hex(4)}"
    scratch_tags.append(task_image)
    dockerfile = TASK_IMAGE.format(base=images.DEFAULT_BASE_IMAGE)
    assert images.ensure_image(client, task_image, dockerfile, {"src.tar": tree_tar(BASE)}, network=False)
    patch = (tmp_path / "tasks" / "toy" / "toy_leak" / "fix.diff").read_text()
    variant = images.variant_image_name(task, "human", patch).replace("isobench/toy:", "isobench/test-task:")
    scratch_tags.append(variant)
    layer = images.variant_dockerfile(task, "human", patch, task_image=task_image)
    assert images.ensure_image(client, variant, layer, {"variant.diff": patch.encode()}, network=False)
    assert not images.ensure_image(client, variant, layer, {"variant.diff": patch.encode()}, network=False)
    labels = client.images.get(variant).labels
    assert (
        labels["isobench.patch_sha256"] == images.patch_hash(patch) and labels["isobench.variant"] == "human"
    )
    out = client.containers.run(
        variant,
        ["cat", "/opt/src/pkg/fast.py"],
        remove=True,
        network_mode="none",
        labels=engine.labels("test", "img", "check"),
    )
    assert out.decode() == "SECRET_FAST_PATH = 'human only'\n"


def test_a_patch_that_does_not_apply_fails_the_build(tmp_path: Path, scratch_tags: list[str]) -> None:
    client = engine.client()
    task = load(write_source_task(tmp_path / "tasks", "toy-leak", base=BASE, human=HUMAN))
    task_image = f"isobench/test-task:{secrets.token_hex(4)}"
    scratch_tags.append(task_image)
    images.ensure_image(
        client, task_image, TASK_IMAGE.format(base=images.DEFAULT_BASE_IMAGE), {"src.tar": tree_tar(BASE)}
    )
    bad = "diff --git a/pkg/core.py b/pkg/core.py\n--- a/pkg/core.py\n+++ b/pkg/core.py\n"
    bad += "@@ -1 +1 @@\n-def g():\n+def h():\n"
    with pytest.raises(images.SandboxError, match="building"):
        images.ensure_image(
            client,
            task_image + "-bad",
            images.variant_dockerfile(task, "agent", bad, task_image=task_image),
            {"variant.diff": bad.encode()},
            network=False,
        )


def test_prune_removes_least_recently_used_project_images_first(
    tmp_path: Path, scratch_tags: list[str]
) -> None:
    client = engine.client()
    settings = docker_settings(tmp_path)
    stem = f"isobench/test-prune-{secrets.token_hex(3)}"
    base = client.images.get(images.DEFAULT_BASE_IMAGE)
    for name in ("old", "new"):
        base.tag(stem, name)
        scratch_tags.append(f"{stem}:{name}")
    images.record_use(settings, f"{stem}:old")
    images.record_use(settings, f"{stem}:new")
    # a disk that never has room enough: everything of the repository goes, the oldest first
    removed = images.prune(client, settings, min_free_bytes=2**62, repository=stem)
    assert removed == [f"{stem}:old", f"{stem}:new"]
    assert images.DEFAULT_BASE_IMAGE in {tag for image in client.images.list() for tag in image.tags}
    base.tag(stem, "kept")
    scratch_tags.append(f"{stem}:kept")
    assert images.prune(client, settings, min_free_bytes=2**62, repository=stem, keep={f"{stem}:kept"}) == []
    assert images.prune(client, settings, min_free_bytes=0, repository=stem) == []


def test_an_image_build_reports_progress_once_and_keeps_its_log(
    tmp_path: Path, scratch_tags: list[str]
) -> None:
    client = engine.client()
    settings = docker_settings(tmp_path)
    name = f"isobench/test-progress:{secrets.token_hex(4)}"
    scratch_tags.append(name)
    lines: list[str] = []
    dockerfile = f"FROM {images.DEFAULT_BASE_IMAGE}\nRUN echo layer-built\n"
    for _ in range(2):  # the second call finds the image: no build, no line
        images._ensure_locked(
            client,
            settings,
            name,
            dockerfile,
            dict,
            labels={"isobench.kind": "test"},
            network=False,
            progress=lines.append,
        )
    log = images._build_log(settings, name)
    assert lines[0] == f"building image {name} (log: {log})"
    assert lines[1].startswith(f"built image {name} in ") and len(lines) == 2
    assert "layer-built" in log.read_text()
