"""The Ray executor: each item's job runs on a Ray cluster as two tasks, split at the patch.

pytest stays the controller: collection, selection and reports are unchanged. At the start of the run
every selected item is submitted (``submit``); each item's fixture then waits for its own result
(``run``), so items finish in the order the cluster finishes them.

- The solve stage asks for one CPU: the agent never holds a GPU.
- The measure stage takes the solve stage's result as its argument, so Ray schedules it only once the
  patch is recorded; it asks for the task's GPUs and the node's measurement slot (the custom resource
  ``measure``, one per node), so two measurements never share a host. Ray's GPU ids reach the backend
  (``CUDA_VISIBLE_DEVICES`` for local, the device requests for docker).
- A task that needs more GPUs than any node with a measurement slot has is skipped before submission.
- The artifacts travel back into the controller's run folder; files too big to travel stay on the node
  or go to the shared storage folder (``--isobench-executor-storage``), as ``executor.json`` records.
- A lost node, a task that raised, or a cluster that stopped answering is an infrastructure error (E)
  naming the node; rerunning with the same run id resumes from what reached the controller.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
import ray.util

from ..options import Settings
from ..pipeline import InfrastructureError, Job, Progress, TaskSkipped, job_outcome, run_job
from ..results import Outcome, append_outcome, write_json
from ..secrets import redact_data
from .stages import make_request, pack_dir, run_stage, unpack_dir

MEASURE_RESOURCE = "measure"
POLL_S = 1.0
CONNECT_TIMEOUT_S = 10.0
CANCEL_GRACE_S = 20.0
# How often a waiting item checks that the cluster still answers, and how long it may take to answer.
ALIVE_EVERY_S = 15.0
PLACEMENT_FILE = "executor.json"
NO_SLOT = (
    "no node of the Ray cluster offers the measurement slot: start the GPU hosts with"
    """ `ray start --address=HEAD:6379 --resources='{"measure": 1}'`"""
)


# Ray's own signatures, typed here (ray.nodes and get_node_ip_address carry no annotations).
_nodes: Callable[[], list[dict[str, Any]]] = ray.nodes
_node_ip: Callable[[], str] = ray.util.get_node_ip_address


def _node() -> dict[str, str]:
    node_id = ray.get_runtime_context().get_node_id()
    return {"id": node_id, "name": f"{_node_ip()} (node {node_id[:8]})"}


@ray.remote
def solve_stage(request: dict[str, Any]) -> dict[str, Any]:
    """On a cluster node: prepare and run the agent up to the recorded patch."""
    return run_stage("solve", request, node=_node())


@ray.remote
def measure_stage(request: dict[str, Any], solved: dict[str, Any]) -> dict[str, Any]:
    """On a cluster node with the task's GPUs and the measurement slot: measure from the recorded patch."""
    if solved["status"] != "ok":  # the solve stage's answer stands; nothing to measure
        return {**solved, "measure_skipped": True}
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    answer = run_stage("measure", {**request, "recorded": solved["artifacts"]}, node=_node(), gpu_ids=gpu_ids)
    answer["solve_placement"] = solved["placement"]
    return answer


@dataclass
class _Submitted:
    solve: Any
    measure: Any
    submitted: float = field(default_factory=time.monotonic)
    solve_seen: bool = False
    solve_ok: bool = (
        False  # the agent stage answered (whatever its status): a later loss is the measurement's
    )


class RayExecutor:
    """Submits every selected item's two stages at the start; each item waits for its own result."""

    name = "ray"

    def __init__(self, address: str | None, settings: Settings) -> None:
        self.address = address
        self.settings = settings
        self.storage = str(settings.executor_storage) if settings.executor_storage else None
        self.timeout_s = settings.executor_timeout_s
        self._submitted: dict[str, _Submitted] = {}
        self._skipped: dict[str, str] = {}
        self._capacity: tuple[int, int] | None = None  # (nodes with a measurement slot, most GPUs on one)
        self._last_alive = time.monotonic()

    @classmethod
    def create(cls, arg: str | None, settings: Settings) -> RayExecutor:
        address = arg.strip() if arg else None
        executor = cls(address or None, settings)
        executor.connect()
        return executor

    def connect(self) -> None:
        """Join the cluster at ``address`` (None: $RAY_ADDRESS, a running local cluster, else a new one).

        A ``HOST:PORT`` that does not answer is refused at once: Ray itself would retry for minutes.
        """
        if self.address and (found := re.fullmatch(r"\[?([^\]/]+?)\]?:(\d+)", self.address)):
            try:
                socket.create_connection(
                    (found.group(1), int(found.group(2))), timeout=CONNECT_TIMEOUT_S
                ).close()
            except OSError as exc:
                raise ValueError(
                    f"cannot reach the Ray cluster at {self.address} ({exc.strerror or exc}): start it with"
                    " `ray start --head --port=PORT` or give the head's HOST:PORT"
                ) from None
        try:
            ray.init(
                address=self.address,
                namespace="isobench",
                log_to_driver=False,
                ignore_reinit_error=True,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "(RAY_ADDRESS, else a new local instance)"
            raise ValueError(f"cannot join the Ray cluster at {where}: {exc}") from None

    # -- capacity and placement -------------------------------------------------------------------

    def capacity(self) -> tuple[int, int]:
        """(nodes offering the measurement slot, the most GPUs one of them has), asked once per session."""
        if self._capacity is None:
            alive = [n for n in _nodes() if n.get("Alive")]
            slots = [n for n in alive if n.get("Resources", {}).get(MEASURE_RESOURCE, 0) >= 1]
            most = max((int(n["Resources"].get("GPU", 0)) for n in slots), default=0)
            self._capacity = (len(slots), most)
        return self._capacity

    def skip_reason(self, job: Job) -> str | None:
        """Why the cluster cannot run this task (Ray would leave it pending forever), or None."""
        task = job.task
        if task.status != "ready":
            return f"{task.id} is incomplete: {task.status_reason}"
        slots, most = self.capacity()
        if slots == 0:
            return f"{task.id}: {NO_SLOT}"
        needed = task.benchmark.gpus or 0
        if needed > most:
            return (
                f"{task.id} needs {needed} GPU(s); the largest node of the Ray cluster with a measurement"
                f" slot has {most}"
            )
        return None

    # -- the Executor protocol ---------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        key = str(job.artifacts)
        if key in self._submitted or key in self._skipped or _recorded_ok(job.artifacts):
            return  # a recorded outcome is resumed (and judged again if need be) in the controller
        reason = self.skip_reason(job)
        if reason is not None:
            self._skipped[key] = reason
            return
        recorded, _ = pack_dir(job.artifacts)
        request = make_request(job, recorded, storage=self.storage)
        label = f"{job.task.id}/{job.artifacts.name}"
        solve = solve_stage.options(num_cpus=1, max_retries=0, name=f"isobench-solve {label}").remote(request)
        measure = measure_stage.options(
            num_cpus=1,
            num_gpus=job.task.benchmark.gpus or 0,
            resources={MEASURE_RESOURCE: 1},
            max_retries=0,
            name=f"isobench-measure {label}",
        ).remote(request, solve)
        self._submitted[key] = _Submitted(solve, measure)

    def run(self, job: Job, progress: Progress) -> Outcome:
        key = str(job.artifacts)
        if _recorded_ok(job.artifacts) and key not in self._submitted:
            return run_job(job, progress=progress)
        self.submit(job)
        if key in self._skipped:
            raise TaskSkipped(self._skipped[key])
        handle = self._submitted[key]
        progress("submitted to the Ray cluster; waiting for its result")
        try:
            answer = self._wait(job, handle, progress)
        except KeyboardInterrupt:
            self.close()
            raise
        finally:
            self._submitted.pop(key, None)
        return self._finish(job, answer, progress)

    def close(self) -> None:
        """Cancel whatever is still submitted (also after Ctrl-C), then leave the cluster."""
        refs = [ref for handle in self._submitted.values() for ref in (handle.measure, handle.solve)]
        self._submitted.clear()
        _cancel(refs)
        with contextlib.suppress(Exception):
            ray.shutdown()

    # -- waiting and recording ---------------------------------------------------------------------

    def _wait(self, job: Job, handle: _Submitted, progress: Progress) -> dict[str, Any]:
        """The measure stage's answer; a lost node, a stage that raised or a silent cluster become E."""
        while True:
            ready, _ = ray.wait([handle.measure], timeout=POLL_S)
            if not handle.solve_seen and ray.wait([handle.solve], timeout=0)[0]:
                handle.solve_seen = True
                lost = self._take_solve(job, handle, progress)
                if lost is not None:  # the measure stage would wait for a node that can run it
                    self._cancel(handle)
                    raise self._error(job, self._describe(lost, "agent"))
            if ready:
                break
            if self.timeout_s is not None and time.monotonic() - handle.submitted > self.timeout_s:
                self._cancel(handle)
                raise self._error(job, f"no result from the Ray cluster within {self.timeout_s / 60:g} min")
            self._check_alive(job, handle)
        try:
            answer: dict[str, Any] = ray.get(handle.measure)
        except ray.exceptions.RayError as exc:
            stage = "measurement" if handle.solve_ok else "agent"
            raise self._error(job, self._describe(exc, stage)) from None
        return answer

    def _take_solve(self, job: Job, handle: _Submitted, progress: Progress) -> ray.exceptions.RayError | None:
        """Bring the patch back as soon as the agent stage ends (it survives a lost measurement);
        the error when the agent stage was lost."""
        try:
            solved: dict[str, Any] = ray.get(handle.solve)
        except ray.exceptions.RayError as exc:
            return exc
        handle.solve_ok = True
        unpack_dir(solved["artifacts"], job.artifacts)
        _merge_placement(job.artifacts, {"solve": _record_of(solved)})
        progress(f"agent stage done on {solved['placement']['node']} ({solved['status']})")
        return None

    def _check_alive(self, job: Job, handle: _Submitted) -> None:
        if time.monotonic() - self._last_alive < ALIVE_EVERY_S:
            return
        try:
            _nodes()
        except Exception as exc:
            self._cancel(handle)
            message = f"the Ray cluster stopped answering: {type(exc).__name__}: {exc}"
            raise self._error(job, message) from None
        self._last_alive = time.monotonic()

    def _cancel(self, handle: _Submitted) -> None:
        _cancel([handle.measure, handle.solve])

    def _describe(self, exc: ray.exceptions.RayError, stage: str) -> str:
        """What went wrong in a stage, naming the node where Ray's message does."""
        text = str(exc)
        node = _node_named(text)
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        where = f" on node {node}" if node else ""
        return f"the Ray cluster lost the {stage} stage{where}: {type(exc).__name__}: {first[:400]}"

    def _error(self, job: Job, message: str) -> InfrastructureError:
        return InfrastructureError(message, _record(job, job_outcome(job, status="error", error=message)))

    def _finish(self, job: Job, answer: dict[str, Any], progress: Progress) -> Outcome:
        """Unpack the artifacts into the controller's run folder and record the outcome there."""
        unpack_dir(answer["artifacts"], job.artifacts)
        stages = {"solve": _record_of(answer)} if answer.get("measure_skipped") else {}
        if "solve_placement" in answer:
            stages["measure"] = _record_of(answer)
        _merge_placement(job.artifacts, stages)
        for message in answer.get("messages", []):
            progress(message)
        if answer["status"] == "skipped":
            raise TaskSkipped(answer["message"])
        wire = answer.get("outcome")
        if answer["status"] != "ok" or wire is None:
            where = answer["placement"]["node"]
            message = f"{answer['message']} (on {where})"
            if wire is None:
                raise self._error(job, message)
            outcome = Outcome.model_validate({**wire, "artifacts": str(job.artifacts)})
            raise InfrastructureError(message, _record(job, outcome))
        return _record(job, Outcome.model_validate({**wire, "artifacts": str(job.artifacts)}))


def _cancel(refs: list[Any]) -> None:
    """Stop running stages: first as Ctrl-C would (the stage stops its agent's or benchmark's process
    tree), then, for what is still running after ``CANCEL_GRACE_S``, by killing the worker (Ray also
    kills the worker's children then, but not theirs: hence the polite round first)."""
    if not refs:
        return
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    with contextlib.suppress(Exception):
        _, running = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in running:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _record(job: Job, outcome: Outcome) -> Outcome:
    """Store the outcome in the controller's run folder, as ``run_job`` does in its own."""
    clean = Outcome.model_validate(redact_data(outcome.to_wire()))
    write_json(job.artifacts / "outcome.json", clean.to_wire())
    append_outcome(job.run_dir, clean)
    return clean


def _recorded_ok(folder: Path) -> bool:
    try:
        recorded = Outcome.model_validate_json((folder / "outcome.json").read_text(encoding="utf-8"))
        return recorded.status == "ok"
    except (OSError, ValueError):
        return False


def _record_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        **answer["placement"],
        "status": answer["status"],
        "left_on_node": answer.get("left_on_node", []),
        "stored": answer.get("stored", {}),
    }


def _merge_placement(folder: Path, stages: dict[str, Any]) -> None:
    """``executor.json``: where and when each stage ran, and which files did not travel back."""
    if not stages:
        return
    path = folder / PLACEMENT_FILE
    data: dict[str, Any] = {"executor": "ray"}
    with contextlib.suppress(OSError, ValueError):
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
    data.update(stages)
    write_json(path, data)


def _node_named(text: str) -> str | None:
    """The node an error message of Ray names (its IP and id), if any."""
    ip = re.search(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b", text)
    node_id = re.search(r"\b([0-9a-f]{56})\b", text)
    if node_id is None and ip is None:
        return None
    parts = [ip.group(1)] if ip else []
    if node_id:
        parts.append(f"(node {node_id.group(1)[:8]})")
    return " ".join(parts)
