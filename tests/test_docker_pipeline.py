"""Whole jobs on the docker backend: agent isolation, the time budget, and cleanup after failures."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_isobench.agents.base import AgentRun, SolveContext
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.pipeline import InfrastructureError, Job, run_job
from pytest_isobench.sandbox import engine
from pytest_isobench.sandbox.docker import DockerSandbox
from pytest_isobench.tasks import LoadedTask
from support import load, write_source_task
from test_docker_sandbox import docker_settings, need_docker


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=20)


def docker_job(tmp_path: Path, task_file: Path, spec: str, **overrides: object) -> Job:
    run_id = "test-" + secrets.token_hex(4)
    settings = replace(docker_settings(tmp_path), rounds=1, warmup=0, agent=spec, run_id=run_id, **overrides)  # type: ignore[arg-type]
    agent = build_agent(spec, agent_registry([]))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, settings, run_id, DockerSandbox)


def test_a_command_agent_cannot_open_a_socket(tmp_path: Path, toy: Path) -> None:
    probe = (
        "python -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)\" && touch online"
    )
    job = docker_job(tmp_path, toy, f"command:{probe}")
    outcome = run_job(job)
    assert outcome.agent_run["returncode"] != 0
    assert "Network is unreachable" in (job.artifacts / "agent.stderr.txt").read_text()
    assert outcome.patch["empty"] is True  # no `online` file: the socket never opened
    assert engine.count_containers(job.run_id) == 0


def test_the_agent_reads_its_prompt_and_works_as_non_root(tmp_path: Path, toy: Path) -> None:
    command = 'id -u; head -c 60 "$ISOBENCH_PROMPT_FILE"; sed -i s/0.06/0.02/ work.py'
    job = docker_job(tmp_path, toy, f"command:{command}")
    outcome = run_job(job)
    out = (job.artifacts / "agent.stdout.txt").read_text()
    assert out.split("\n")[0] != "0"
    assert (job.artifacts / "prompt.txt").read_text()[:20] in out
    assert outcome.patch["files"] == ["work.py"]
    # the agent's edit is what got measured: a 60 -> 20 ms step, like the human change (one round on
    # a busy machine decides beats/similar/worse by chance; carrying the fix or not it does not)
    detail = outcome.hard_detail
    assert detail["agent_vs_baseline_pct"] > detail["human_vs_baseline_pct"] / 2 > 20, detail


def test_the_time_budget_stops_a_runaway_agent(tmp_path: Path, toy: Path) -> None:
    runaway = "command:(sleep 600 &) ; setsid sleep 601 & echo 'DELAY = 0.01' >> work.py; sleep 602"
    job = docker_job(tmp_path, toy, runaway, time_budget_min=0.05)
    outcome = run_job(job)
    assert outcome.timed_out is True and outcome.agent_run["returncode"] is None
    assert outcome.agent_run["duration_s"] < 30
    assert outcome.patch["files"] == ["work.py"]  # what it did before the budget ran out is kept
    assert engine.count_containers(job.run_id) == 0


def test_an_agent_past_its_disk_limit_is_stopped(tmp_path: Path, toy: Path) -> None:
    """It writes through the bind mount; the watchdog on the host side stops it (and its container)."""
    writer = (
        "command:i=0; while [ $i -lt 200 ]; do head -c 1048576 /dev/zero > junk$i.bin; i=$((i+1)); done;"
        " sleep 600"
    )
    job = docker_job(tmp_path, toy, writer, agent_disk_bytes=5 * 1024 * 1024, time_budget_min=20)
    outcome = run_job(job)
    assert outcome.agent_run["stop_reason"] == "disk_limit" and not outcome.timed_out
    assert outcome.agent_run["disk_grown_bytes"] > 5 * 1024 * 1024
    assert outcome.patch["empty"] is True  # discarded, never diffed
    assert outcome.hard == "failed" and outcome.hard_reason == "disk_limit"  # its failure, unmeasured
    assert engine.count_containers(job.run_id) == 0


def test_containers_are_removed_after_an_infrastructure_failure(tmp_path: Path) -> None:
    broken = write_source_task(tmp_path / "tasks", "toy-broken", command="python -c 'raise SystemExit(3)'")
    job = docker_job(tmp_path, broken, "noop")
    # Both references crash; whichever the shuffled schedule runs first stops the task.
    with pytest.raises(InfrastructureError, match=r"(baseline|human) variant failed"):
        run_job(job)
    assert engine.count_containers(job.run_id) == 0


class Interrupted:
    """An agent that starts work in its container, then gets Ctrl-C."""

    name = "interrupted"

    def solve(self, ctx: SolveContext) -> AgentRun:
        env = ctx.sandbox.environment()
        ctx.sandbox.run(
            "sleep 300 &",
            cwd=ctx.workdir,
            env=env,
            timeout_s=5,
            stdout_path=ctx.log_dir / "o.txt",
            stderr_path=ctx.log_dir / "e.txt",
        )
        assert engine.count_containers(ctx.log_dir.parent.parent.name) == 1
        raise KeyboardInterrupt


def test_containers_are_removed_after_ctrl_c(tmp_path: Path, toy: Path) -> None:
    job = replace(docker_job(tmp_path, toy, "noop"), agent=Interrupted())
    with pytest.raises(KeyboardInterrupt):
        run_job(job)
    assert engine.count_containers(job.run_id) == 0


def test_cleanup_command_removes_leftovers_of_a_killed_run(tmp_path: Path, toy: Path) -> None:
    """A run killed outright (SIGKILL: no finally, no atexit) leaves containers; `cleanup` removes them."""
    run_id = "test-" + secrets.token_hex(4)
    script = f"""
import os, sys
sys.path[:0] = {[str(Path(__file__).parent)]!r}
from pathlib import Path
from test_docker_pipeline import docker_job
from dataclasses import replace
job = docker_job(Path({str(tmp_path)!r}), Path({str(toy)!r}), "noop")
job = replace(job, run_id={run_id!r}, settings=replace(job.settings, run_id={run_id!r}))
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.repos import materialise
repo = materialise(job.task, job.entry.path, job.settings.cache_dir / "repos")
ws = job.settings.work_dir / {run_id!r} / job.task.id / "noop"
box = job.sandbox_factory(SandboxSpec(job.task, job.entry.path, repo, ws, job.settings))
box.agent_workdir()
box.variant_tree("baseline")
os.kill(os.getpid(), 9)
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert killed.returncode == -9, killed.stderr
    assert engine.count_containers(run_id) == 1
    dry = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "cleanup", "--run-id", run_id, "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0 and "1 container" in dry.stdout, dry.stdout + dry.stderr
    assert engine.count_containers(run_id) == 1
    done = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "cleanup", "--run-id", run_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert engine.count_containers(run_id) == 0


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_on_a_real_run_removes_its_containers(tmp_path: Path, signal_name: str) -> None:
    run_id = "test-" + secrets.token_hex(4)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--isobench-agent=human",
        "--isobench-backend=docker",
        f"--isobench-run-id={run_id}",
        "-m",
        "smoke",
        "-p",
        "no:cacheprovider",
        f"--isobench-runs-dir={tmp_path / 'runs'}",
        f"--isobench-cache-dir={tmp_path / 'cache'}",
    ]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while engine.count_containers(run_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.count_containers(run_id) > 0, "the run never started a container"
        process.send_signal(getattr(signal, signal_name))
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    time.sleep(2)  # a container the engine was still creating when the signal came must be gone too
    assert engine.count_containers(run_id) == 0, output.decode(errors="replace")[-2000:]


CRASHING_AGENT = '''
import os
from pytest_isobench.sandbox import engine


class Crash:
    """Starts work in its container, then its pytest-xdist worker dies at once (no cleanup runs)."""

    name = "crash"

    def solve(self, ctx):
        ctx.sandbox.run("true", cwd=ctx.workdir, env=ctx.sandbox.environment(), timeout_s=30,
                        stdout_path=ctx.log_dir / "o.txt", stderr_path=ctx.log_dir / "e.txt")
        with open(os.environ["CRASH_MARK"], "w") as mark:
            mark.write(str(engine.count_containers(os.environ["CRASH_RUN_ID"])))
        os._exit(7)


def pytest_isobench_agents():
    return {"crash": lambda arg: Crash()}
'''


def test_session_end_removes_the_containers_of_a_crashed_worker(tmp_path: Path) -> None:
    """A worker killed mid-task runs no cleanup of its own: the controller's session end removes them."""
    write_source_task(tmp_path / "tasks", "toy-crash")
    (tmp_path / "conftest.py").write_text(CRASHING_AGENT)
    test_file = Path(__file__).resolve().parents[1] / "tasks" / "test_isobench.py"
    (tmp_path / "test_isobench.py").write_text(test_file.read_text())
    run_id = "test-" + secrets.token_hex(4)
    argv = [sys.executable, "-m", "pytest", "-n", "1", "-p", "no:cacheprovider", "--isobench-agent=crash"]
    argv += [
        "--isobench-backend=docker",
        f"--isobench-run-id={run_id}",
        f"--isobench-tasks={tmp_path / 'tasks'}",
        f"--isobench-runs-dir={tmp_path / 'runs'}",
        f"--isobench-cache-dir={tmp_path / 'cache'}",
    ]
    mark = tmp_path / "containers-at-crash.txt"
    env = {**os.environ, "CRASH_MARK": str(mark), "CRASH_RUN_ID": run_id}
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode != 0
    assert "crashed" in done.stdout, done.stdout[-2000:]
    assert mark.read_text() == "1", done.stdout[-2000:]
    assert engine.count_containers(run_id) == 0, done.stdout[-2000:]


GATEWAY_PROBE = """
import socket, struct, sys
# the default route of the container leads to the host, through the bridge
route = [line.split() for line in open("/proc/net/route")][1:]
gateway = next(socket.inet_ntoa(struct.pack("<L", int(r[2], 16))) for r in route if r[1] == "00000000")
socket.create_connection((gateway, int(sys.argv[1])), timeout=10).sendall(b"hello")
"""


def test_with_a_bridge_network_the_agent_reaches_a_server_on_the_host(tmp_path: Path, toy: Path) -> None:
    """What API-based agents need: ``--isobench-agent-network=bridge`` reaches the host (and beyond)."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        server.settimeout(60)
        port = server.getsockname()[1]
        accepted: list[bytes] = []

        def answer() -> None:
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    accepted.append(conn.recv(100))

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        probe = f"python -c '{GATEWAY_PROBE}' {port}"
        job = docker_job(tmp_path, toy, f"command:{probe}", agent_network="bridge")
        outcome = run_job(job)
        thread.join(timeout=30)
    assert outcome.agent_run["returncode"] == 0, (job.artifacts / "agent.stderr.txt").read_text()
    assert accepted == [b"hello"]
