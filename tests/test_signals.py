"""A terminated or killed pytest leaves no agent, benchmark or benchmark server running (local backend)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support import ANCHOR, WORK_PY, write_source_task
from test_procs import marked, wait_for

SERVER_PY = """\
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
# The benchmark client announces the server's port, then hangs: the run is caught mid-benchmark.
CLIENT_PY = """\
import sys, time
open(sys.argv[2], "w").write(sys.argv[1])
time.sleep(1000)
"""
# The agent starts a daemon that leaves its session and clears its environment, then works on.
AGENT_SH = """\
setsid sh -c "env -i {python} -c 'import time; time.sleep(1000)' {marker} &"
echo started > {flag}
{python} -c 'import time; time.sleep(1000)' {marker}
"""


@pytest.fixture
def marker() -> str:
    return f"isobench-marker-{uuid.uuid4().hex}"


def serving_suite(root: Path, marker: str, flag: Path) -> None:
    base = {"server.py": SERVER_PY, "client.py": CLIENT_PY, "work.py": WORK_PY}
    write_source_task(
        root / "tasks",
        "toy-serve",
        base=base,
        mode="serving",
        command=f"python client.py {{port}} {flag} {marker}",
        metric="mean_ttft_ms",
        server=f"python server.py {{port}} {marker}",
        extra="server_timeout_s = 30",
        timeout_s=600,
    )
    (root / "tasks" / "test_isobench.py").write_text(ANCHOR)
    (root / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")


def agent_suite(root: Path, marker: str, flag: Path) -> str:
    write_source_task(root / "tasks", "toy-agent")
    (root / "tasks" / "test_isobench.py").write_text(ANCHOR)
    (root / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    script = root / "agent.sh"
    script.write_text(AGENT_SH.format(python=sys.executable, marker=marker, flag=flag))
    return f"--isobench-agent=command:sh {script}"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_pytest(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ISOBENCH_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "--isobench-rounds=1", "--isobench-warmup=0", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(run: subprocess.Popen[str], sig: int) -> str:
    run.send_signal(sig)
    try:
        output, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    return output


def cleanup(root: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "cleanup", "--backend=local"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("stage", ["agent", "serving", "agent-xdist"])
def test_sigterm_runs_the_ctrl_c_cleanup(pytester: pytest.Pytester, marker: str, stage: str) -> None:
    flag = pytester.path / "started"
    if stage == "agent-xdist":
        args = [agent_suite(pytester.path, marker, flag), "-n", "2"]
    elif stage == "agent":
        args = [agent_suite(pytester.path, marker, flag)]
    else:
        serving_suite(pytester.path, marker, flag)
        args = ["--isobench-agent=noop"]
    run = start_pytest(pytester.path, *args)
    try:
        assert wait_for(flag.exists, 120), "the stage never started"
        assert wait_for(lambda: len(marked(marker)) >= 2)
    except BaseException:
        run.kill()
        raise
    port = int(flag.read_text()) if stage == "serving" else None
    output = stop(run, signal.SIGTERM)
    assert run.returncode == 2, output  # pytest's "interrupted", after its own cleanup
    assert "KeyboardInterrupt" in output
    assert not marked(marker)
    assert port is None or not listening(port)
    work = pytester.path / ".isobench" / "work"
    assert not [p for p in work.rglob("*") if p.is_file()]  # the sandbox was closed
    assert not list((pytester.path / ".isobench" / "cache" / "procs").glob("*.json"))


@pytest.mark.parametrize("stage", ["agent", "serving"])
def test_sigkill_then_cleanup_leaves_nothing(pytester: pytest.Pytester, marker: str, stage: str) -> None:
    flag = pytester.path / "started"
    if stage == "agent":
        args = [agent_suite(pytester.path, marker, flag)]
    else:
        serving_suite(pytester.path, marker, flag)
        args = ["--isobench-agent=noop"]
    run = start_pytest(pytester.path, *args)
    try:
        assert wait_for(flag.exists, 120), "the stage never started"
        assert wait_for(lambda: len(marked(marker)) >= 2)
        assert list((pytester.path / ".isobench" / "cache" / "procs").glob("*.json"))
    except BaseException:
        run.kill()
        raise
    port = int(flag.read_text()) if stage == "serving" else None
    stop(run, signal.SIGKILL)
    cleanup(pytester.path)
    assert wait_for(lambda: not marked(marker), 30), marked(marker)
    assert port is None or not listening(port)
    assert not list((pytester.path / ".isobench" / "cache" / "procs").glob("*.json"))
