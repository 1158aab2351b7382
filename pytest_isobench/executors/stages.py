"""A job's two stages as functions of builtins, for an executor that runs them in another process or host.

The controller sends a request (task file, agent spec, settings, run id, and the artifacts recorded so
far, packed); the stage rebuilds the job under a folder of its own node, runs its part of the pipeline
and answers with a result (status, outcome, the artifacts folder packed, where and when it ran). Both
are plain dicts of builtins (bytes included), so any transport can carry them; nothing here imports Ray.

- ``solve``: prepare and run the agent up to the recorded patch (``pipeline.solve_job``);
- ``measure``: resume from the recorded patch and measure, check, judge (``pipeline.run_job``), with the
  GPU ids the scheduler gave the stage.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from ..options import Settings
from ..pipeline import InfrastructureError, Job, TaskSkipped, check_runnable, run_job, solve_job
from ..results import Outcome
from ..tasks import BrokenTaskFile, load_task_file

Stage = Literal["solve", "measure"]
NODE_DIR_VAR = "ISOBENCH_NODE_DIR"
# Files above this size stay on the node (or go to the shared storage folder) instead of travelling back.
MAX_RETURNED_FILE_BYTES = 64 * 1024**2

_SETTINGS = TypeAdapter(Settings)


class StageInputError(ValueError):
    """A request a stage cannot use (e.g. the task file is not at the same path on this node)."""


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """Settings as JSON builtins (paths as strings)."""
    data: dict[str, Any] = _SETTINGS.dump_python(settings, mode="json")
    return data


def settings_from_wire(data: Mapping[str, Any]) -> Settings:
    return _SETTINGS.validate_python(dict(data))


def pack_dir(folder: Path, *, max_file_bytes: int = MAX_RETURNED_FILE_BYTES) -> tuple[bytes, list[str]]:
    """A gzip tarball of ``folder`` (empty bytes when there is nothing) and the files left out as too big."""
    if not folder.is_dir():
        return b"", []
    left: list[str] = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            if path.stat().st_size > max_file_bytes:
                left.append(relative)
                continue
            tar.add(path, arcname=relative, recursive=False)
    return buffer.getvalue(), left


def unpack_dir(data: bytes, folder: Path) -> None:
    """Extract a ``pack_dir`` tarball into ``folder`` (files only, nothing outside it)."""
    if not data:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")


def make_request(job: Job, recorded: bytes, *, storage: str | None = None) -> dict[str, Any]:
    """What a stage needs to rebuild ``job`` elsewhere; ``recorded``: the job's artifacts so far, packed.

    Built-in agents, backends and judges travel by name; one a conftest.py registered (agent, backend,
    judge, correctness check) travels as the object itself (the transport must pickle it).
    """
    from ..agents.registry import builtin_agents
    from ..sandbox.base import builtin_sandboxes

    agent_name = job.agent_spec.partition(":")[0]
    builtin_agent = job.agent_spec in builtin_agents() or agent_name in builtin_agents()
    builtin_backend = builtin_sandboxes().get(job.settings.backend) is job.sandbox_factory
    return {
        "task_file": str(job.entry.path),
        "task_id": job.task.id,
        "agent_spec": job.agent_spec,
        "agent": None if builtin_agent else job.agent,
        "sandbox_factory": None if builtin_backend else job.sandbox_factory,
        "extra_judges": dict(job.extra_judges) or None,
        "extra_checks": dict(job.extra_checks) or None,
        "settings": settings_to_wire(job.settings),
        "run_id": job.run_id,
        "recorded": recorded,
        "storage": storage,
    }


def node_dir(node_id: str) -> Path:
    """This node's folder for runs, caches and working copies (``$ISOBENCH_NODE_DIR``, else under tmp)."""
    base = os.environ.get(NODE_DIR_VAR) or str(Path(tempfile.gettempdir()) / "isobench-nodes")
    return Path(base) / (node_id[:16] or "node")


def rebuild_job(request: Mapping[str, Any], node_id: str, gpu_ids: Sequence[str] | None) -> Job:
    """The controller's job, with runs and caches in this node's folder and the GPUs this stage was given."""
    from .. import secrets as redaction
    from ..agents.registry import build_agent, builtin_agents
    from ..sandbox import gpus
    from ..sandbox.base import builtin_sandboxes
    from ..session import configure_agent

    task_file = Path(request["task_file"])
    if not task_file.is_file():
        raise StageInputError(
            f"task file {task_file} is not on this node: give every node the same checkout at the same"
            " path (or a shared folder)"
        )
    entry = load_task_file(task_file)
    if isinstance(entry, BrokenTaskFile):
        raise StageInputError(entry.message)
    here = node_dir(node_id)
    changes: dict[str, Any] = {"runs_dir": here / "runs", "cache_dir": here / "cache"}
    if gpu_ids is not None:
        changes["gpus"] = tuple(gpu_ids)
    settings = dataclasses.replace(settings_from_wire(request["settings"]), **changes)
    redaction.configure(settings.redact)
    gpus.configure(settings.gpus)  # the docker backend leases from these (the ones this stage was given)
    agent = request["agent"]
    if agent is None:
        agent = build_agent(request["agent_spec"], builtin_agents())
        configure_agent(agent, settings)
    factory = request["sandbox_factory"] or builtin_sandboxes()[settings.backend]
    return Job(
        entry,
        agent,
        request["agent_spec"],
        settings,
        request["run_id"],
        factory,
        extra_judges=request["extra_judges"] or {},
        extra_checks=request.get("extra_checks") or {},
    )


def run_stage(
    stage: Stage,
    request: Mapping[str, Any],
    *,
    node: Mapping[str, str],
    gpu_ids: Sequence[str] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one stage of a job here and answer with what the controller records.

    ``node``: this node's ``id`` and ``name`` (where it ran, for the record and error messages);
    ``gpu_ids``: the GPUs the scheduler gave the stage (None: the backend's own choice);
    ``on_message``: called with each progress line as it comes (the answer's ``messages`` has them
    all too). The answer's ``status`` is ``ok``, ``error`` (an infrastructure error, with its
    ``outcome``) or ``skipped``.
    """
    started = time.time()
    messages: list[str] = []

    def say(message: str) -> None:
        messages.append(message)
        if on_message is not None:
            on_message(message)

    result: dict[str, Any] = {"stage": stage, "status": "ok", "message": "", "outcome": None}
    job: Job | None = None
    try:
        job = rebuild_job(request, node["id"], gpu_ids)
        if job.artifacts.exists():  # the controller's record is the one that counts
            shutil.rmtree(job.artifacts)
        unpack_dir(request["recorded"], job.artifacts)
        if stage == "solve":
            solve_job(job, say)
        else:
            check_runnable(job)
            result["outcome"] = run_job(job, say).to_wire()
    except TaskSkipped as exc:
        result.update(status="skipped", message=str(exc))
    except InfrastructureError as exc:
        result.update(status="error", message=str(exc), outcome=exc.outcome.to_wire())
    except (StageInputError, OSError, ValueError) as exc:
        result.update(status="error", message=f"{type(exc).__name__}: {exc}")
    packed, left = pack_dir(job.artifacts) if job is not None else (b"", [])
    stored = _store_large(job, left, request.get("storage")) if job is not None and left else {}
    result.update(
        artifacts=packed,
        left_on_node=[name for name in left if name not in stored],
        stored=stored,
        messages=messages,
        placement={
            "node": node.get("name", ""),
            "node_id": node["id"],
            "host": socket.gethostname(),
            "gpus": list(gpu_ids) if gpu_ids is not None else None,
            "started": started,
            "ended": time.time(),
        },
    )
    return result


def _store_large(job: Job, names: list[str], storage: str | None) -> dict[str, str]:
    """Copy files too big to travel into the shared storage folder; {relative name: stored path}."""
    if not storage:
        return {}
    target = Path(storage) / job.run_id / job.task.id / job.artifacts.name
    stored: dict[str, str] = {}
    for name in names:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(job.artifacts / name, destination)
        stored[name] = str(destination)
    return stored


def outcome_of(result: Mapping[str, Any]) -> Outcome | None:
    """The outcome a stage answered with, if any."""
    wire = result.get("outcome")
    return None if wire is None else Outcome.model_validate(wire)
