"""Docker: through the model gateway the agent's container reaches its model and nothing else, and no
provider key is inside it (environment, files, processes)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_upstream import FakeUpstream
from pytest_isobench.gateway.server import stop_shared_gateway
from pytest_isobench.pipeline import run_job
from pytest_isobench.sandbox import engine
from pytest_isobench.sandbox.docker import bridge_gateway
from support import write_source_task
from test_docker_pipeline import docker_job
from test_docker_sandbox import need_docker

# Runs as the agent's user in its container: what it can reach, and where the key could be.
PROBE = r"""
import json, os, socket, urllib.request

def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__ + ": " + str(exc)

found = {"env": sorted(os.environ)}
request = urllib.request.Request(
    os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
    data=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}).encode(),
    headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "content-type": "application/json"},
)
with urllib.request.urlopen(request, timeout=60) as answer:
    found["gateway"] = json.load(answer)["usage"]
found["outside"] = reach("1.1.1.1", 53)
found["host_ports"] = {h: reach(h, int(os.environ["PROBE_PORT"])) for h in os.environ["PROBE_HOSTS"].split()}
found["gateway_from_host_side"] = reach(os.environ["PROBE_HOSTS"].split()[0], int(os.environ["GATEWAY_PORT"]))
key = os.environ["PROBE_KEY_REVERSED"][::-1].encode()  # the key itself is in no environment
holders = []
for pid in os.listdir("/proc"):
    for name in ("environ", "cmdline"):
        try:
            if key in open(f"/proc/{pid}/{name}", "rb").read():
                holders.append(f"/proc/{pid}/{name}")
        except OSError:
            pass
for top in ("/etc", "/opt", "/tmp", "/home", "/run", "/root", "/usr/local", os.getcwd()):
    for folder, _, files in os.walk(top):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if key in open(path, "rb").read():
                    holders.append(path)
            except OSError:
                pass
found["key_holders"] = holders
print(json.dumps(found))
"""


@pytest.fixture(autouse=True)
def _docker() -> Iterator[None]:
    need_docker()
    yield
    stop_shared_gateway()  # each test's upstream and keys are its own


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A service on every host address: what an agent must not reach."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def host_addresses() -> list[str]:
    """The docker bridge's host address and this host's other IPv4 addresses."""
    found = [bridge_gateway()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    return found


def test_the_agent_reaches_the_gateway_and_nothing_else_and_holds_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_listener: int
) -> None:
    key = f"sk-ant-canary-{secrets.token_hex(12)}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("PROBE_SOURCE", PROBE)
    task_file = write_source_task(tmp_path / "tasks", "toy-net")
    hosts = host_addresses()
    with FakeUpstream() as upstream:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.url)
        job = docker_job(
            tmp_path,
            task_file,
            'command:python -c "$PROBE_SOURCE"',
            agent_network="gateway",
            agent_env=("PROBE_SOURCE", "PROBE_KEY_REVERSED", "PROBE_HOSTS", "PROBE_PORT", "GATEWAY_PORT"),
        )
        from pytest_isobench.gateway.server import shared_gateway

        gateway = shared_gateway(job.settings.prices)
        monkeypatch.setenv("PROBE_KEY_REVERSED", key[::-1])  # what to look for, not itself a key
        monkeypatch.setenv("PROBE_HOSTS", " ".join(hosts))
        monkeypatch.setenv("PROBE_PORT", str(host_listener))
        monkeypatch.setenv("GATEWAY_PORT", str(gateway.port))
        outcome = run_job(job)
        received = upstream.requests
    out = (job.artifacts / "agent.stdout.txt").read_text()
    assert outcome.agent_run["returncode"] == 0, (job.artifacts / "agent.stderr.txt").read_text()
    found = json.loads(out.strip().splitlines()[-1])
    # the model call went through the gateway, which swapped the attempt's token for the key
    assert found["gateway"]["input_tokens"] == 11 and found["gateway"]["output_tokens"] == 7
    assert [r.headers.get("x-api-key") for r in received] == [key]
    # nothing else: not the internet, not the host's services, not the gateway's own host port
    assert found["outside"] != "connected" and "unreachable" in found["outside"].lower()
    assert all(result != "connected" for result in found["host_ports"].values()), found["host_ports"]
    assert found["gateway_from_host_side"] != "connected"
    # no key inside: not in its environment, not in a process's environment or command line, no file
    assert "ANTHROPIC_API_KEY" in found["env"] and "OPENAI_API_KEY" in found["env"]  # the tokens
    assert found["key_holders"] == []
    calls = [json.loads(line) for line in (job.artifacts / "model_calls.jsonl").read_text().splitlines()]
    assert [(c["status"], c["tokens"]) for c in calls] == [(200, {"input": 11, "output": 7, "cached": 0})]
    assert outcome.agent_run["tokens"] == {"input": 11, "output": 7, "cached": 0}
    assert outcome.agent_run["gateway"]["calls"] == 1
    assert key not in (job.artifacts / "model_calls.jsonl").read_text()
    assert engine.count_containers(job.run_id) == 0
