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
- With the docker backend, both stages prefer a node whose engine already holds the task image.
- The stages' progress lines reach the controller as they come, through one actor per run (the
  progress board); each waiting item passes them on to their items' progress callbacks.
- The artifacts travel back into the controller's run folder; files too big to travel stay on the node
  or go to the shared storage folder (``--isobench-executor-storage``), as ``executor.json`` records.
- A lost node, a task that raised, or a cluster that stopped answering is an infrastructure error (E)
  naming the node; rerunning with the same run id resumes from what reached the controller. The
  controller outlives a cluster that went away (Ray would end it); a stage whose raylet died stops
  its processes and its worker.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
import ray.util
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..options import Settings
from ..pipeline import InfrastructureError, Job, Progress, TaskSkipped, job_outcome, run_job
from ..results import Outcome, append_outcome, write_json
from ..secrets import redact_data
from .stages import Stage, make_request, pack_dir, run_stage, unpack_dir

MEASURE_RESOURCE = "measure"
NAMESPACE = "isobench"
POLL_S = 1.0
CONNECT_TIMEOUT_S = 10.0
CANCEL_GRACE_S = 20.0
# How often a waiting item checks that the cluster still answers, and how long it may take to answer.
ALIVE_EVERY_S = 15.0
ALIVE_ANSWER_S = 30.0
# Ray ends a driver whose cluster (its GCS) stays away for a minute, before pytest can report anything.
# The controller waits longer than that, so that its own check (above) finds the loss and every item
# left gets its E, the summary and the reports.
GCS_PATIENCE_VAR = "RAY_gcs_rpc_server_reconnect_timeout_s"
GCS_PATIENCE_S = 24 * 3600
LEAVE_S = 20.0
# A stage whose node's raylet died (the cluster went away) stops its processes, as on Ctrl-C, and its
# worker exits: Ray leaves a worker that is busy running a task alive after its raylet.
NODE_CHECK_S = 1.0
STAGE_STOP_S = 30.0
# How long a stage waits for its last progress lines to reach the board, and the controller for the board.
LIVE_FLUSH_S = 10.0
# How long the controller waits for the nodes to say which task images their Docker engines hold.
IMAGE_PROBE_S = 60.0
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


@contextlib.contextmanager
def _ends_with_its_node() -> Iterator[None]:
    """While a stage runs: if this worker's raylet dies (its parent changes), interrupt the stage as
    Ctrl-C would (the pipeline stops the agent's or benchmark's process tree), then end the worker."""
    raylet = os.getppid()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(NODE_CHECK_S):
            if os.getppid() != raylet:
                _thread.interrupt_main()
                done.wait(STAGE_STOP_S)
                os._exit(1)

    threading.Thread(target=watch, name="isobench-node-watch", daemon=True).start()
    try:
        yield
    finally:
        done.set()


class _Board:
    """The run's progress lines on their way from the stages to the controller (one per run, no CPU)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def post(self, key: str, message: str) -> None:
        self.lines.append((key, message))

    def take(self) -> list[tuple[str, str]]:
        lines, self.lines = self.lines, []
        return lines

    def ping(self) -> bool:
        return True


ProgressBoard: Any = ray.remote(num_cpus=0)(_Board)


class _LiveLines:
    """A stage's ``on_message``: posts each line to the run's board; ``delivered()`` at the end says
    whether every line reached it (else the controller shows the answer's copy)."""

    def __init__(self, live: dict[str, str] | None) -> None:
        self.key = live["key"] if live else ""
        self.board: Any = None
        self.ok = False
        if live:
            with contextlib.suppress(Exception):
                self.board = ray.get_actor(live["board"], namespace=NAMESPACE)
                self.ok = True

    def __call__(self, message: str) -> None:
        if self.board is None:
            return
        try:
            self.board.post.remote(self.key, message)
        except Exception:
            self.board, self.ok = None, False

    def delivered(self) -> bool:
        """True once every line posted is on the board (a caller's calls to an actor run in order)."""
        if self.board is None:
            return False
        try:
            return self.ok and bool(ray.get(self.board.ping.remote(), timeout=LIVE_FLUSH_S))
        except Exception:
            return False


def _run_live(stage: Stage, request: dict[str, Any], gpu_ids: list[str] | None = None) -> dict[str, Any]:
    lines = _LiveLines(request.get("live"))
    with _ends_with_its_node():
        answer = run_stage(stage, request, node=_node(), gpu_ids=gpu_ids, on_message=lines)
    answer["live"] = lines.delivered()
    return answer


@ray.remote(num_cpus=0, max_retries=0)
def images_held(names: list[str]) -> list[str]:
    """On one node: which of the images ``names`` its Docker engine holds (none where it has no engine)."""
    from ..sandbox import engine

    try:
        client = engine.client()
    except Exception:
        return []
    held = []
    for name in names:
        with contextlib.suppress(Exception):
            client.images.get(name)
            held.append(name)
    return held


@dataclass(frozen=True)
class _NodeInfo:
    id: str
    gpus: int
    slot: bool  # offers the measurement slot
    cpus: int


def prefer_holder(holders: set[str], eligible: list[str], placed: dict[str, int]) -> str | None:
    """The node a stage should prefer: among the ``eligible`` nodes that hold the task image, the one
    with the fewest stages placed on it so far; None when none holds it, or every eligible node does
    (then Ray's own choice is as good)."""
    having = [node for node in eligible if node in holders]
    if not having or len(having) == len(eligible):
        return None
    return min(having, key=lambda node: (placed.get(node, 0), having.index(node)))


@ray.remote
def solve_stage(request: dict[str, Any]) -> dict[str, Any]:
    """On a cluster node: prepare and run the agent up to the recorded patch."""
    return _run_live("solve", request)


@ray.remote
def measure_stage(request: dict[str, Any], solved: dict[str, Any]) -> dict[str, Any]:
    """On a cluster node with the task's GPUs and the measurement slot: measure from the recorded patch."""
    if solved["status"] != "ok":  # the solve stage's answer stands; nothing to measure
        return {**solved, "measure_skipped": True}
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    answer = _run_live("measure", {**request, "recorded": solved["artifacts"]}, gpu_ids)
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
        self._node_info: list[_NodeInfo] = []
        self._holders: dict[str, set[str]] = {}  # image → ids of the nodes whose engine holds it
        self._placed: dict[str, int] = {}  # node id → stages this run pinned to it
        self._last_alive = time.monotonic()
        self._lost: str | None = None  # why the cluster is gone, once it is
        self._board: Any = None  # the run's ProgressBoard, made at the first submission
        self._board_name = f"isobench-progress-{uuid.uuid4().hex[:12]}"
        self._reporters: dict[str, Progress] = {}  # submitted item → its progress callback

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
        os.environ.setdefault(GCS_PATIENCE_VAR, str(GCS_PATIENCE_S))  # read by ray.init, in this process
        try:
            ray.init(
                address=self.address,
                namespace=NAMESPACE,
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
            self._node_info = [
                _NodeInfo(
                    n["NodeID"],
                    int(n.get("Resources", {}).get("GPU", 0)),
                    n.get("Resources", {}).get(MEASURE_RESOURCE, 0) >= 1,
                    int(n.get("Resources", {}).get("CPU", 0)),
                )
                for n in alive
            ]
            slots = [n for n in self._node_info if n.slot]
            self._capacity = (len(slots), max((n.gpus for n in slots), default=0))
        return self._capacity

    def holders(self, image: str) -> set[str]:
        """The nodes whose Docker engine holds ``image`` (asked once per image, of every node at once)."""
        if image not in self._holders:
            self.capacity()
            asked = {
                node.id: images_held.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.id, soft=False)
                ).remote([image])
                for node in self._node_info
            }
            ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=IMAGE_PROBE_S)
            found = set()
            for node_id, ref in asked.items():
                if ref in ready:
                    with contextlib.suppress(Exception):
                        if image in ray.get(ref):
                            found.add(node_id)
            _cancel([ref for ref in asked.values() if ref not in ready])
            self._holders[image] = found
        return self._holders[image]

    def placement(self, job: Job) -> tuple[Any, Any]:
        """Scheduling strategies (solve, measure) that prefer nodes holding the task's image (docker
        backend); a preferred node that is busy or gone is passed over (``_spill_on_unavailable``)."""
        if job.settings.backend != "docker":
            return None, None
        from ..sandbox.images import runtime_image

        try:
            holders = self.holders(runtime_image(job.task, job.settings))
        except Exception:  # a task without its template: the stage says so where it runs
            return None, None
        needed = job.task.benchmark.gpus or 0
        solve_on = prefer_holder(holders, [n.id for n in self._node_info if n.cpus >= 1], self._placed)
        measure_on = prefer_holder(
            holders, [n.id for n in self._node_info if n.slot and n.gpus >= needed], self._placed
        )
        strategies: list[Any] = []
        for node in (solve_on, measure_on):
            if node is None:
                strategies.append(None)
                continue
            self._placed[node] = self._placed.get(node, 0) + 1
            strategies.append(NodeAffinitySchedulingStrategy(node, soft=True, _spill_on_unavailable=True))
        return strategies[0], strategies[1]

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

    def submit(self, job: Job, progress: Progress) -> None:
        key = str(job.artifacts)
        if key in self._submitted or key in self._skipped or _recorded_ok(job.artifacts):
            return  # a recorded outcome is resumed (and judged again if need be) in the controller
        reason = self.skip_reason(job)
        if reason is not None:
            self._skipped[key] = reason
            return
        recorded, _ = pack_dir(job.artifacts)
        request = make_request(job, recorded, storage=self.storage)
        if self._make_board():
            request["live"] = {"board": self._board_name, "key": key}
        self._reporters[key] = progress
        label = f"{job.task.id}/{job.artifacts.name}"
        solve_on, measure_on = self.placement(job)
        solve = solve_stage.options(
            num_cpus=1, max_retries=0, name=f"isobench-solve {label}", scheduling_strategy=solve_on
        ).remote(request)
        measure = measure_stage.options(
            num_cpus=1,
            num_gpus=job.task.benchmark.gpus or 0,
            resources={MEASURE_RESOURCE: 1},
            max_retries=0,
            name=f"isobench-measure {label}",
            scheduling_strategy=measure_on,
        ).remote(request, solve)
        self._submitted[key] = _Submitted(solve, measure)

    def run(self, job: Job, progress: Progress) -> Outcome:
        key = str(job.artifacts)
        if _recorded_ok(job.artifacts) and key not in self._submitted:
            return run_job(job, progress=progress)
        self.submit(job, progress)
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
            self._relay()  # this item's last lines come before its result
            self._reporters.pop(key, None)
        return self._finish(job, answer, progress)

    def _make_board(self) -> bool:
        if self._board is None:
            with contextlib.suppress(Exception):
                self._board = ProgressBoard.options(name=self._board_name, namespace=NAMESPACE).remote()
        return self._board is not None

    def _relay(self) -> None:
        """Pass the lines the stages posted on to their items' progress callbacks (the main thread's)."""
        if self._board is None or self._lost is not None:
            return
        try:
            lines: list[tuple[str, str]] = ray.get(self._board.take.remote(), timeout=LIVE_FLUSH_S)
        except Exception:
            return
        for key, message in lines:
            if (report := self._reporters.get(key)) is not None:
                report(message)

    def close(self) -> None:
        """Cancel whatever is still submitted (also after Ctrl-C), then leave the cluster; a cluster
        that is gone gets ``LEAVE_S`` to let go, not more."""
        refs = [ref for handle in self._submitted.values() for ref in (handle.measure, handle.solve)]
        self._submitted.clear()

        def leave() -> None:
            if self._lost is None:
                _cancel(refs)
            with contextlib.suppress(Exception):
                ray.shutdown()

        if self._lost is None:
            leave()
        else:
            _bounded(leave, LEAVE_S)

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
            self._relay()
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
        """Every ``ALIVE_EVERY_S``, ask the cluster for its nodes; no answer within ``ALIVE_ANSWER_S``
        means it is gone, and this item and every one still waiting get an E at once."""
        if self._lost is None and time.monotonic() - self._last_alive >= ALIVE_EVERY_S:
            answered, error = _bounded(_nodes, ALIVE_ANSWER_S)
            if error is not None:
                self._lost = f"the Ray cluster stopped answering: {type(error).__name__}: {error}"
            elif not answered:
                self._lost = f"the Ray cluster stopped answering (no answer within {ALIVE_ANSWER_S:g} s)"
            else:
                self._last_alive = time.monotonic()
        if self._lost is not None:
            self._submitted.pop(str(job.artifacts), None)
            raise self._error(job, self._lost)

    def _cancel(self, handle: _Submitted) -> None:
        _cancel([handle.measure, handle.solve])

    def _describe(self, exc: ray.exceptions.RayError, stage: str) -> str:
        """What went wrong in a stage, naming the node where Ray's message does."""
        text = str(exc)
        node = _node_named(text)
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        sentence = re.match(r".*?[.!?](?=\s|$)", first)  # Ray's advice after it is for Ray's own tools
        where = f" on node {node}" if node else ""
        said = (sentence[0] if sentence else first)[:400]
        return f"the Ray cluster lost the {stage} stage{where}: {type(exc).__name__}: {said}"

    def _error(self, job: Job, message: str) -> InfrastructureError:
        return InfrastructureError(message, _record(job, job_outcome(job, status="error", error=message)))

    def _finish(self, job: Job, answer: dict[str, Any], progress: Progress) -> Outcome:
        """Unpack the artifacts into the controller's run folder and record the outcome there."""
        unpack_dir(answer["artifacts"], job.artifacts)
        stages = {"solve": _record_of(answer)} if answer.get("measure_skipped") else {}
        if "solve_placement" in answer:
            stages["measure"] = _record_of(answer)
        _merge_placement(job.artifacts, stages)
        if not answer.get("live"):  # the lines did not come live: the answer's copy
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


def _bounded(call: Callable[[], Any], timeout_s: float) -> tuple[bool, BaseException | None]:
    """Run ``call`` in a daemon thread: (whether it ended within ``timeout_s``, what it raised).

    A call into a cluster that is gone can block for as long as Ray retries; the thread is left to it.
    """
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # reported to the caller
            raised.append(exc)

    thread = threading.Thread(target=target, name="isobench-ray-call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive(), (raised[0] if raised else None)


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
