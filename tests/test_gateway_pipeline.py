"""The gateway in the pipeline (local backend): which agents get it, what the outcome records, and a
gateway that goes away mid-attempt (an infrastructure error, not the agent's failure)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_upstream import FakeUpstream
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.gateway import resolve_network
from pytest_isobench.gateway.server import stop_shared_gateway
from pytest_isobench.pipeline import InfrastructureError, run_job
from pytest_isobench.sandbox import local
from support import write_source_task
from test_pipeline import job

# A command agent that calls its model through whatever the harness gave it (no SDK needed).
CALL = """
import json, os, sys, urllib.request
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/responses",
    data=json.dumps({"model": "gpt-5", "input": "hi"}).encode(),
    headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"},
)
print(urllib.request.urlopen(request, timeout=60).status, flush=True)
"""


@pytest.fixture(autouse=True)
def _fresh_gateways() -> Iterator[None]:
    yield
    stop_shared_gateway()


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-pipeline-0123456789")
        yield fake


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return f"command:{sys.executable} {path}"


def test_auto_gives_the_gateway_to_agents_that_call_a_model_only() -> None:
    registry = agent_registry([])
    assert resolve_network("auto", build_agent("claude-code", registry)) == "gateway"
    assert resolve_network("auto", build_agent("trae-gpt5", registry)) == "gateway"
    for offline in ("human", "noop", "command:true"):
        assert resolve_network("auto", build_agent(offline, registry)) == "none"
    assert resolve_network("gateway", build_agent("command:true", registry)) == "gateway"
    assert resolve_network("bridge", build_agent("claude-code", registry)) == "bridge"


def test_a_command_agent_calls_through_the_gateway_and_the_outcome_counts_it(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = write_source_task(tmp_path / "tasks", "toy-gw")
    spec = script(tmp_path, "call.py", CALL)
    monkeypatch.setattr(local, "_WARNED_NETWORK", False)  # said once per process: say it here
    with caplog.at_level(logging.WARNING, logger="pytest_isobench"):
        outcome = run_job(job(tmp_path, task, spec, agent_network="gateway", agent_max_tokens=1000))
    run = outcome.agent_run
    assert run["returncode"] == 0 and run["tokens"] == {"input": 11, "output": 7, "cached": 0}
    assert run["cost_source"] == "gateway" and run["cost_usd"] > 0 and run["gateway"]["calls"] == 1
    assert run["gateway"]["max_tokens"] == 1000
    (request,) = upstream.requests
    assert request.headers["Authorization"] == "Bearer sk-canary-pipeline-0123456789"
    assert (Path(outcome.artifacts) / "model_calls.jsonl").is_file()
    assert any("runs on this host with its whole network" in r.message for r in caplog.records)
    # without the gateway (the default for a command agent) it has no model variables at all
    offline = run_job(job(tmp_path, task, spec, run_id="run2"))
    assert offline.agent_run["returncode"] != 0 and "gateway" not in offline.agent_run
    assert "OPENAI_BASE_URL" in (Path(offline.artifacts) / "agent.stderr.txt").read_text()


def test_a_gateway_that_stops_mid_attempt_is_an_infrastructure_error(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    task = write_source_task(tmp_path / "tasks", "toy-down")
    called, go = tmp_path / "called", tmp_path / "go"
    body = (
        CALL
        + f"""
import pathlib, time
pathlib.Path({str(called)!r}).touch()
while not pathlib.Path({str(go)!r}).exists():
    time.sleep(0.05)
try:
    urllib.request.urlopen(request, timeout=60)
except OSError as exc:
    print("second call failed:", exc, file=sys.stderr)
    sys.exit(3)
"""
    )
    spec = script(tmp_path, "twice.py", body)
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            run_job(job(tmp_path, task, spec, agent_network="gateway"))
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=attempt)
    runner.start()
    deadline = time.monotonic() + 300
    while not called.exists() and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert called.exists(), failure
    stop_shared_gateway()
    go.touch()
    runner.join(300)
    (error,) = failure
    assert isinstance(error, InfrastructureError), error
    assert "the model gateway stopped during the attempt" in str(error)
    assert error.outcome.status == "error" and error.outcome.hard is None


@pytest.mark.parametrize("key", [None, "sk-canary-refused-0123456789"])
def test_a_provider_refusing_the_harnesss_credentials_is_an_infrastructure_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """A node without the key (or with a bad one) must not score the agent as failed."""
    task = write_source_task(tmp_path / "tasks", "toy-nokey")
    with FakeUpstream("needs_key" if key is None else "refuse_all") as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_url)
        if key is None:
            monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        else:
            monkeypatch.setenv("OPENAI_API_KEY", key)
        with pytest.raises(InfrastructureError) as caught:
            run_job(job(tmp_path, task, script(tmp_path, "call.py", CALL), agent_network="gateway"))
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "(HTTP 401)" in message and "ray start" in message
    assert ("is not set" in message) == (key is None)
    assert caught.value.outcome.status == "error" and caught.value.outcome.hard is None
    assert "sk-canary" not in message and "sk-canary" not in caught.value.outcome.model_dump_json()


def test_the_gateway_timeout_option_bounds_a_stalled_upstream(tmp_path: Path) -> None:
    """``--isobench-gateway-timeout``: the agent gets the gateway's 504 after it, and the call is counted."""
    task = write_source_task(tmp_path / "tasks", "toy-stall")
    with FakeUpstream("hang") as stalled, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", stalled.openai_url)
        env.setenv("OPENAI_API_KEY", "sk-canary-stall-0123456789")
        spec = script(tmp_path, "call.py", CALL)
        outcome = run_job(job(tmp_path, task, spec, agent_network="gateway", gateway_timeout_s=1.5))
    run = outcome.agent_run
    assert run["returncode"] != 0 and run["gateway"]["calls"] == 1 and run["gateway"]["errors"] == 1
    lines = (Path(outcome.artifacts) / "model_calls.jsonl").read_text().splitlines()
    (call,) = [json.loads(line) for line in lines]
    assert call["status"] == 504 and "timed out" in call["error"]
    assert call["latency_s"] < 50  # the default (300 s) would outlast the agent's own 60 s wait
