"""Executors without a cluster: option checks, the registry a conftest.py extends, and the two stages of a
job run as plain functions in separate node folders (what the Ray executor runs on each node)."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.executors.local import LocalExecutor
from pytest_isobench.executors.stages import (
    make_request,
    pack_dir,
    run_stage,
    settings_from_wire,
    settings_to_wire,
    unpack_dir,
)
from pytest_isobench.pipeline import Job, solve_job
from pytest_isobench.results import Outcome
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.tasks import LoadedTask
from support import ANCHOR, load, write_source_task
from test_local_sandbox import settings


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=5)


def job(tmp_path: Path, task_file: Path, spec: str = "noop") -> Job:
    base = replace(settings(tmp_path), rounds=3, warmup=0, agent=spec, run_id="run1")
    agent = build_agent(spec, agent_registry([]))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, base, "run1", LocalSandbox)


def project(pytester: pytest.Pytester) -> None:
    write_source_task(pytester.path / "tasks", "toy-a", timeout_s=5)
    write_source_task(pytester.path / "tasks", "toy-b", timeout_s=5)
    pytester.makepyfile(test_isobench=ANCHOR)


def common(pytester: pytest.Pytester) -> list[str]:
    return [
        "-p",
        "no:cacheprovider",
        f"--isobench-runs-dir={pytester.path / 'runs'}",
        f"--isobench-cache-dir={pytester.path / 'cache'}",
        "--isobench-rounds=3",
        "--isobench-warmup=0",
    ]


def test_an_unknown_executor_is_a_usage_error_naming_the_known_ones(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest(*common(pytester), "--isobench-agent=noop", "--isobench-executor=slurm")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-executor=slurm: unknown executor 'slurm'; known: local, ray*"])


def test_a_malformed_executor_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest(*common(pytester), "--isobench-agent=noop", "--isobench-executor=r a y")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-executor: 'r a y' is not NAME or NAME:ARG*"])


def test_the_local_executor_takes_no_argument(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest(*common(pytester), "--isobench-agent=noop", "--isobench-executor=local:x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-executor=local:x: takes no argument*"])


def test_ray_with_xdist_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest(
        *common(pytester), "--isobench-agent=noop", "--isobench-executor=ray:127.0.0.1:1", "-n", "2"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the executor spreads the tasks itself; drop pytest-xdist's -n/--dist*"])


RECORDING = """
import json
from pathlib import Path

from pytest_isobench.executors.local import LocalExecutor

LOG = Path(__file__).with_name("calls.jsonl")


class Recording(LocalExecutor):
    name = "recording"

    def __init__(self, arg):
        self.arg = arg

    def _log(self, what, job):
        with LOG.open("a") as handle:
            handle.write(json.dumps([what, job.task.id, self.arg]) + "\\n")

    def submit(self, job, progress):
        self._log("submit", job)

    def run(self, job, progress):
        self._log("run", job)
        return super().run(job, progress)

    def close(self):
        with LOG.open("a") as handle:
            handle.write(json.dumps(["close", None, self.arg]) + "\\n")


def pytest_isobench_executors():
    return {"recording": lambda arg, settings: Recording(arg)}
"""


def test_a_conftest_executor_gets_every_selected_item_at_the_start_then_each_run(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    write_source_task(pytester.path / "tasks", "toy-c", timeout_s=5)
    pytester.makeconftest(RECORDING)
    result = pytester.runpytest(
        *common(pytester), "--isobench-agent=noop", "--isobench-executor=recording:x", "-k", "not toy-b"
    )
    result.assert_outcomes(failed=2)  # noop does not beat the human: each item's run came through
    calls = [json.loads(line) for line in (pytester.path / "calls.jsonl").read_text().splitlines()]
    assert calls == [
        ["submit", "toy-a", "x"],
        ["submit", "toy-c", "x"],
        ["run", "toy-a", "x"],
        ["run", "toy-c", "x"],
        ["close", None, "x"],
    ]


def test_settings_cross_as_builtins_and_come_back_equal(tmp_path: Path) -> None:
    original = replace(
        settings(tmp_path),
        gpus=("0", "3"),
        prices={"m": (1.0, 2.0)},
        judges=("overlap",),
        executor_storage=tmp_path / "shared",
    )
    wire = settings_to_wire(original)
    assert json.loads(json.dumps(wire)) == wire
    assert settings_from_wire(wire) == original


def test_files_too_big_to_travel_are_left_out_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    (folder / "bench").mkdir(parents=True)
    (folder / "patch.diff").write_text("small")
    (folder / "bench" / "trace.bin").write_bytes(b"x" * 100)
    packed, left = pack_dir(folder, max_file_bytes=50)
    assert left == ["bench/trace.bin"]
    unpack_dir(packed, tmp_path / "back")
    assert (tmp_path / "back" / "patch.diff").read_text() == "small"
    assert not (tmp_path / "back" / "bench" / "trace.bin").exists()


def test_the_two_stages_on_two_nodes_give_the_local_executors_verdict(
    tmp_path: Path, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOBENCH_NODE_DIR", str(tmp_path / "nodes"))
    controller = job(tmp_path / "controller", toy)
    request = make_request(controller, b"")
    assert request["agent"] is None and request["sandbox_factory"] is None  # built-ins travel by name
    solved = run_stage("solve", request, node={"id": "node-a", "name": "a"})
    assert solved["status"] == "ok" and solved["outcome"] is None
    node_a = tmp_path / "nodes" / "node-a" / "runs" / "run1" / "toy-sleep" / "noop"
    assert (node_a / "patch.diff").is_file() and not (node_a / "outcome.json").exists()

    measured = run_stage(
        "measure",
        {**request, "recorded": solved["artifacts"]},
        node={"id": "node-b", "name": "b"},
        gpu_ids=[],
    )
    assert measured["status"] == "ok", measured["message"]
    node_b = tmp_path / "nodes" / "node-b" / "runs" / "run1" / "toy-sleep" / "noop"
    # the measure stage resumed from the recorded patch: the agent's record is the solve stage's
    assert (node_b / "agent.json").read_text() == (node_a / "agent.json").read_text()
    assert measured["placement"]["gpus"] == [] and solved["placement"]["gpus"] is None
    remote = Outcome.model_validate(measured["outcome"])

    local = LocalExecutor().run(job(tmp_path / "local", toy), lambda _m: None)
    assert (remote.status, remote.hard, remote.quadrant) == (local.status, local.hard, local.quadrant)
    assert remote.hard == "worse"


class Verdict:
    """A correctness check of a kind a conftest adds: says what the task file tells it to."""

    kind = "verdict"

    def run(self, config: Any, ctx: Any) -> dict[str, Any]:
        assert ctx.tree("agent").is_dir() and ctx.tree("human").is_dir()
        return {"status": config.answer, "kind": self.kind, "reason": "as configured"}


def test_a_conftest_correctness_check_travels_to_the_measure_stage(
    tmp_path: Path, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOBENCH_NODE_DIR", str(tmp_path / "nodes"))
    toy.write_text(toy.read_text() + '\n[correctness]\nkind = "verdict"\nanswer = "fail"\n')
    controller = replace(job(tmp_path, toy), extra_checks={"verdict": Verdict()})
    controller = replace(controller, settings=replace(controller.settings, correctness="all"))
    request = pickle.loads(pickle.dumps(make_request(controller, b"")))  # as a transport carries it
    solved = run_stage("solve", request, node={"id": "a", "name": "a"})
    measured = run_stage(
        "measure", {**request, "recorded": solved["artifacts"]}, node={"id": "b", "name": "b"}
    )
    assert measured["status"] == "ok", measured["message"]
    outcome = Outcome.model_validate(measured["outcome"])
    assert outcome.correctness == "fail", outcome.correctness_detail
    assert "as configured" in json.dumps(outcome.correctness_detail)


def test_a_task_file_missing_on_the_node_is_an_error_saying_so(
    tmp_path: Path, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOBENCH_NODE_DIR", str(tmp_path / "nodes"))
    request = {**make_request(job(tmp_path, toy), b""), "task_file": str(tmp_path / "elsewhere.toml")}
    answer = run_stage("solve", request, node={"id": "n", "name": "n"})
    assert answer["status"] == "error"
    assert "is not on this node: give every node the same checkout at the same path" in answer["message"]


def test_solve_job_records_the_patch_once(tmp_path: Path, toy: Path) -> None:
    the_job = job(tmp_path, toy, "human")
    solve_job(the_job)
    patch = the_job.artifacts / "patch.diff"
    first = patch.stat().st_mtime_ns
    assert "0.02" in patch.read_text()
    solve_job(the_job)  # resumed: nothing runs again
    assert patch.stat().st_mtime_ns == first


def test_a_ray_address_that_does_not_answer_is_a_usage_error_at_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("ray", reason="the ray extra: pip install 'pytest-isobench[ray]'")
    import socket

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    project(pytester)
    result = pytester.runpytest_subprocess(
        *common(pytester), "--isobench-agent=noop", f"--isobench-executor=ray:127.0.0.1:{port}", timeout=120
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*cannot reach the Ray cluster at 127.0.0.1:{port}*ray start --head*"])


def test_a_stage_prefers_the_least_used_node_holding_the_image_and_only_when_some_lack_it() -> None:
    pytest.importorskip("ray", reason="the ray extra: pip install 'pytest-isobench[ray]'")
    from pytest_isobench.executors.ray import prefer_holder

    eligible = ["a", "b", "c"]
    assert prefer_holder({"b", "c"}, eligible, {}) == "b"
    assert prefer_holder({"b", "c"}, eligible, {"b": 2, "c": 1}) == "c"  # spread among the holders
    assert prefer_holder({"b", "x"}, eligible, {"b": 5}) == "b"  # a holder that cannot run it is not one
    assert prefer_holder(set(), eligible, {}) is None  # nobody holds it: Ray chooses
    assert prefer_holder({"a", "b", "c"}, eligible, {}) is None  # everybody does: Ray chooses
