"""The Ray executor when the cluster fails under it (slow: a cluster of its own, one node is killed)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the ray extra: pip install 'pytest-isobench[ray]'")

from ray_cluster import outcome_of, ray_cluster, run_suite, smoke_project, suite_argv

pytestmark = pytest.mark.slow

HEAD = {"num_cpus": 0, "num_gpus": 0}  # runs nothing: every stage lands on the worker node
WORKER = {"num_cpus": 2, "num_gpus": 2, "resources": {"measure": 1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with ray_cluster(tmp_path_factory.mktemp("nodes"), [HEAD, WORKER]) as running:
        yield running


def wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout_s:g} s")
        time.sleep(0.5)


def test_a_node_lost_mid_task_is_an_error_naming_it_and_the_rerun_resumes(
    cluster: Any, tmp_path: Path
) -> None:
    project = smoke_project(tmp_path / "project")
    marks = tmp_path / "marks"
    marks.mkdir()
    # The agent says it started, then works until told to stop working (a second attempt is quick).
    agent = f"command:touch {marks}/started; test -e {marks}/resume || sleep 600"
    args = (f"--isobench-agent={agent}", "-k", "smoke-latency", "--isobench-run-id=lost")
    args = (*args, f"--isobench-executor=ray:{cluster.address}")
    (victim,) = list(cluster.worker_nodes)
    runner = _start(project, args)
    try:
        wait_for(marks / "started", 240)
        kill_node(cluster, victim)
        stdout, _ = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    report = json.loads((project / "report.json").read_text())
    (test,) = report["tests"]
    assert test["setup"]["outcome"] == "failed", stdout[-3000:]  # E, not F
    message = test["setup"]["longrepr"]
    assert "infrastructure error" in message and "lost the agent stage" in message, message
    assert f"(node {victim.node_id[:8]})" in message  # the node is named
    (outcome_file,) = (project / "runs" / "lost" / "smoke-latency").glob("*/outcome.json")
    recorded = json.loads(outcome_file.read_text())
    assert recorded["status"] == "error" and victim.node_id[:8] in recorded["error"]

    (marks / "resume").touch()
    cluster.add_node(**WORKER)
    cluster.wait_for_nodes()
    _, tests = run_suite(project, *args)
    outcome = outcome_of(tests["smoke-latency"])
    assert outcome["status"] == "ok" and outcome["hard"] == "worse"  # nothing changed: the base is slower


def kill_node(cluster: Any, node: Any) -> None:
    """What a host that dies looks like: every process of the node goes at once, workers included."""
    import psutil  # Ray's own dependency

    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    for process in raylet.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    cluster.remove_node(node, allow_graceful=False)


def _start(project: Path, args: tuple[str, ...]) -> subprocess.Popen[str]:
    argv = suite_argv(project, *args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines reach the pipe as they are printed
    return subprocess.Popen(
        argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_remote_stages_progress_lines_show_while_it_runs(cluster: Any, tmp_path: Path) -> None:
    """The agent waits until the test has seen the agent stage's line on the controller's terminal:
    lines replayed only when the stage ends would never come."""
    project = smoke_project(tmp_path / "project")
    go = tmp_path / "go"
    agent = f"command:while [ ! -e {go} ]; do sleep 0.2; done"
    args = (f"--isobench-agent={agent}", "-k", "smoke-latency", f"--isobench-executor=ray:{cluster.address}")
    runner = _start(project, args)
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert runner.stdout is not None
        for line in runner.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any("smoke-latency: agent command:" in line and "at work" in line for line in seen):
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(
                    "no agent line while the agent works:\n" + "".join(seen)[-3000:]
                ) from None
            assert line is not None, "the run ended before the agent's line came:\n" + "".join(seen)[-3000:]
            seen.append(line)
        go.touch()
        runner.wait(timeout=300)
    finally:
        go.touch()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        reader.join(timeout=30)
        if runner.stdout is not None:
            runner.stdout.close()
    while (line := lines.get_nowait() if not lines.empty() else None) is not None:
        seen.append(line)
    output = "".join(seen)
    assert runner.returncode == pytest.ExitCode.TESTS_FAILED, output[-3000:]  # worse: nothing changed
    assert output.count("agent stage done on") == 1
    assert len([line for line in output.splitlines() if " at work (budget" in line]) == 1  # not replayed
    assert "hard verdict:" in output  # the measurement stage's lines too


def test_ctrl_c_cancels_what_was_submitted_and_leaves_no_agent_running(cluster: Any, tmp_path: Path) -> None:
    project = smoke_project(tmp_path / "project")
    marks = tmp_path / "marks"
    marks.mkdir()
    agent = f"command:echo $$ > {marks}/pid; sleep 600"
    args = (f"--isobench-agent={agent}", "-k", "smoke-latency", f"--isobench-executor=ray:{cluster.address}")
    runner = _start(project, args)
    try:
        wait_for(marks / "pid", 240)
        time.sleep(1)  # the shell is now in its sleep
        runner.send_signal(signal.SIGINT)
        stdout, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == pytest.ExitCode.INTERRUPTED, stdout[-3000:]
    agent_pid = int((marks / "pid").read_text())
    deadline = time.monotonic() + 60
    while _alive(agent_pid):
        assert time.monotonic() < deadline, f"the agent (pid {agent_pid}) outlived the cancelled run"
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, OSError):
        return False
    return state not in ("Z", "X")


def test_a_cluster_that_goes_away_gives_every_waiting_item_an_error_and_the_run_ends(tmp_path: Path) -> None:
    """The head's GCS dies: Ray would end the controller a minute later, with no report; instead every
    item gets its E, the summary is printed, and the agents left on the nodes end with their workers."""
    import psutil  # Ray's own dependency

    project = smoke_project(tmp_path / "project")
    marks = tmp_path / "marks"
    marks.mkdir()
    agent = f"command:echo $$ >> {marks}/pids; sleep 600"
    with ray_cluster(tmp_path / "nodes", [HEAD, WORKER]) as doomed:
        args = (f"--isobench-agent={agent}", "-m", "smoke", f"--isobench-executor=ray:{doomed.address}")
        runner = _start(project, args)
        try:
            wait_for(marks / "pids", 240)
            for process in doomed.head_node.all_processes["gcs_server"]:
                psutil.Process(process.process.pid).kill()
            stdout, _ = runner.communicate(timeout=300)  # bounded: the controller must not hang
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
        assert runner.returncode == pytest.ExitCode.TESTS_FAILED, stdout[-3000:]
        report = json.loads((project / "report.json").read_text())
        assert len(report["tests"]) == 3
        for test in report["tests"]:
            assert test["setup"]["outcome"] == "failed", stdout[-3000:]  # E, not F
            assert "infrastructure error" in test["setup"]["longrepr"]
            assert "the Ray cluster" in test["setup"]["longrepr"]
        assert "isobench: run" in stdout, stdout[-3000:]  # the summary was printed
        agents = [int(line) for line in (marks / "pids").read_text().split()]
        deadline = time.monotonic() + 180  # the nodes notice the loss after Ray's own minute
        while alive := [pid for pid in agents if _alive(pid)]:
            assert time.monotonic() < deadline, f"agents {alive} outlived their cluster"
            time.sleep(1)
