"""The Codex CLI agent: its parser on real outputs, its launch, and the real codex on a smoke task.

The end-to-end tests run the real ``codex`` binary (``pip install openai-codex-cli-bin``, the
``agents`` extra) against the scripted fake Responses API of ``fake_responses_agent.py``, through
``run_job`` on the local backend.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from fake_responses_agent import LOOP_COMMAND, FakeResponses, Usage, offered_tools, usage_for
from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.cli import AttemptFiles, CliOptions
from pytest_isobench.agents.codex import (
    REQUEST_RETRIES,
    STREAM_RETRIES,
    Codex,
    bundled_codex,
    catalog_for,
    model_catalog,
)
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.gateway import Ledger, direct_access, gateway_access
from pytest_isobench.pipeline import InfrastructureError, Job, run_job
from pytest_isobench.pricing import cost_usd
from pytest_isobench.results import Outcome
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.sandbox.procs import RunResult
from pytest_isobench.tasks import LoadedTask
from smoke_fixes import SMOKE_ROOT, smoke_fixes
from support import load
from test_docker_sandbox import need_docker
from test_local_sandbox import settings
from test_procs import marked

DATA = Path(__file__).parent / "data" / "agent-clis"
INSTALL = "pip install 'pytest-isobench[agents]'"


# ---- the parser, on what the real CLI printed ------------------------------------------------------


def attempt_files(
    tmp_path: Path, stdout: str, returncode: int | None, *, rollout: str | None = None
) -> AttemptFiles:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    out.write_text((DATA / stdout).read_text() if stdout else "")
    err.write_text(
        "error: unexpected argument '--frobnicate' found\n\nUsage: codex exec [OPTIONS] [PROMPT]\n"
    )
    if rollout:
        day = home / ".codex" / "sessions" / "2026" / "11" / "30"
        day.mkdir(parents=True)
        (day / "rollout-2026-11-30T13-43-01-x.jsonl").write_text((DATA / rollout).read_text())
    result = RunResult(returncode, returncode is None, 1.0, out, err)
    return AttemptFiles(home, out, err, result)


def test_a_completed_run_sums_its_usage_and_lists_its_steps(tmp_path: Path) -> None:
    files = attempt_files(tmp_path, "codex_edit.jsonl", 0, rollout="codex_edit_rollout.jsonl")
    attempt = Codex.create("codex", None).parse(files)
    assert attempt.stop_reason == "completed" and attempt.error is None
    assert attempt.tokens is not None
    assert attempt.tokens.to_wire() == {"input": 29423, "cached": 14710, "output": 75}  # turn.completed
    assert attempt.turns == 3  # the rollout's token_count events: one per model response
    assert [p.name for p in attempt.keep] == ["rollout-2026-11-30T13-43-01-x.jsonl", "last_message.txt"]
    kinds = [(s["kind"], s.get("tool")) for s in attempt.steps]
    assert kinds == [
        ("tool_call", "exec_command"),
        ("tool_result", "exec_command"),
        ("tool_call", "apply_patch"),
        ("tool_result", "apply_patch"),
        ("model", None),
    ]
    assert attempt.steps[0]["input"] == {"command": "/bin/bash -lc 'cat hello.py'"}
    assert attempt.steps[1]["output"].startswith("def greet():") and attempt.steps[1]["is_error"] is False
    assert attempt.steps[2]["input"]["changes"] == [{"path": "/tmp/run/repo/hello.py", "kind": "update"}]
    assert attempt.steps[4]["text"] == "I changed greet() to return 'hello world'."


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("codex_500_noretry.jsonl", "We\u2019re currently experiencing high demand"),
        ("codex_500_default.jsonl", "We\u2019re currently experiencing high demand"),
        ("codex_stall.jsonl", "stream disconnected before completion: idle timeout waiting for SSE"),
    ],
)
def test_a_failed_model_api_is_an_api_error_with_the_reason(tmp_path: Path, stdout: str, reason: str) -> None:
    attempt = Codex.create("codex", None).parse(attempt_files(tmp_path, stdout, 1))
    assert attempt.stop_reason == "api_error"
    assert attempt.error is not None and attempt.error.startswith(reason)
    assert "Reconnecting" not in attempt.error  # the final failure, not a retry's notice
    assert attempt.tokens is None


def test_a_final_error_event_without_turn_failed_is_an_api_error(tmp_path: Path) -> None:
    lines = [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "error", "message": "Reconnecting... 1/1 (Connection failed: error sending request)"},
        {"type": "error", "message": "Connection failed: error sending request"},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    files = attempt_files(tmp_path, "", 1)
    files.stdout.write_text((tmp_path / "events.jsonl").read_text())
    attempt = Codex.create("codex", None).parse(files)
    assert (attempt.stop_reason, attempt.error) == ("api_error", "Connection failed: error sending request")


def test_a_killed_run_takes_its_tokens_from_the_rollout(tmp_path: Path) -> None:
    files = attempt_files(tmp_path, "codex_loop_sigterm.jsonl", None, rollout="codex_edit_rollout.jsonl")
    attempt = Codex.create("codex", None).parse(files)
    assert attempt.stop_reason == "timeout"  # run_attempt puts the harness's own reason there
    assert attempt.tokens is not None  # no turn.completed: the rollout's last token_count total
    assert attempt.tokens.to_wire() == {"input": 29389, "cached": 14693, "output": 75}
    assert attempt.turns == 3
    commands = [s for s in attempt.steps if s["kind"] == "tool_call"]
    assert len(commands) == 79 and commands[-1]["input"] == {"command": "/bin/bash -lc 'echo looping'"}


def test_a_killed_run_without_a_rollout_has_no_tokens(tmp_path: Path) -> None:
    attempt = Codex.create("codex", None).parse(attempt_files(tmp_path, "codex_loop_sigterm.jsonl", None))
    assert attempt.tokens is None and attempt.turns is None and attempt.keep[0].name == "last_message.txt"


def test_no_events_and_an_error_exit_is_a_crash_with_the_stderr_tail(tmp_path: Path) -> None:
    attempt = Codex.create("codex", None).parse(attempt_files(tmp_path, "", 2))
    assert attempt.stop_reason == "crashed"
    assert attempt.error is not None and "unexpected argument '--frobnicate'" in attempt.error


def test_a_warning_item_in_a_completed_run_is_a_step_not_a_failure(tmp_path: Path) -> None:
    files = attempt_files(tmp_path, "codex_edit.jsonl", 0)
    warning = {"type": "item.completed", "item": {"id": "item_9", "type": "error", "message": "no metadata"}}
    files.stdout.write_text(json.dumps(warning) + "\n" + files.stdout.read_text())
    attempt = Codex.create("codex", None).parse(files)
    assert attempt.stop_reason == "completed"
    assert attempt.steps[0] == {"kind": "model", "text": "no metadata", "is_error": True}


# ---- the launch and finding the CLI ----------------------------------------------------------------


def test_launch_points_a_provider_at_openai_base_url_and_keeps_the_key_out_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-isobench-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    agent = build_agent("codex:gpt-5.5", agent_registry([]))
    assert isinstance(agent, Codex) and agent.model == "gpt-5.5"
    ctx = cast(SolveContext, SimpleNamespace(prompt="Make it fast.", model_access=direct_access()))
    launch = agent.launch(ctx, tmp_path, "/opt/codex")
    argv = launch.argv
    assert argv[:2] == ["/opt/codex", "exec"] and argv[-2:] == ["--", "Make it fast."]
    assert argv[argv.index("-m") + 1] == "gpt-5.5" and "--ephemeral" not in argv  # the rollout is wanted
    assert {
        "--json",
        "--skip-git-repo-check",
        "danger-full-access",
        "plugins",
        "unbounded_connection_retries",
    } <= set(argv)
    assert argv[argv.index("-o") + 1] == str(tmp_path / "last_message.txt")
    assert launch.env == {"CODEX_HOME": str(tmp_path / ".codex"), "OPENAI_API_KEY": key}
    (path, text), *_ = launch.files.items()
    assert path == ".codex/config.toml" and key not in text
    config = tomllib.loads(text)
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:9/v1" and provider["env_key"] == "OPENAI_API_KEY"
    assert provider["wire_api"] == "responses" and provider["request_max_retries"] <= 3
    assert provider["stream_max_retries"] <= 3 and provider["stream_idle_timeout_ms"] > 0
    assert config["shell_environment_policy"]["exclude"] == ["OPENAI_API_KEY"]
    # through the gateway: its address and the attempt's token, never the key
    ledger = Ledger("t", tmp_path / "calls.jsonl", budget_usd=None, max_tokens=None)
    access = gateway_access("http://127.0.0.1:47800", ledger)
    launch = agent.launch(cast(SolveContext, SimpleNamespace(prompt="p", model_access=access)), tmp_path, "c")
    assert launch.env == {"CODEX_HOME": str(tmp_path / ".codex"), "OPENAI_API_KEY": ledger.token}
    provider = tomllib.loads(launch.files[".codex/config.toml"])["model_providers"]["isobench"]
    assert provider["base_url"] == "http://127.0.0.1:47800/openai" and key not in str(launch.files)


def test_a_model_missing_from_the_catalog_gets_the_closest_entry_under_its_own_id() -> None:
    catalog = {
        "models": [
            {"slug": "gpt-6-astra", "apply_patch_tool_type": "freeform"},
            {"slug": "gpt-5.6-sol", "apply_patch_tool_type": "freeform", "use_responses_lite": True},
            {"slug": "gpt-5.5", "apply_patch_tool_type": "freeform", "display_name": "GPT-5.5"},
            {"slug": "gpt-5.6-mini", "apply_patch_tool_type": None},
        ],
        "etag": "x",
    }
    extended, source = catalog_for("gpt-5", catalog)
    assert source == "gpt-5.5" and extended is not None and extended["etag"] == "x"
    assert extended["models"][:4] == catalog["models"]
    assert extended["models"][4] == {
        "slug": "gpt-5",
        "apply_patch_tool_type": "freeform",
        "display_name": "gpt-5",
    }
    assert catalog_for("gpt-5.5", catalog) == (None, None)  # listed: codex's own entry
    assert catalog_for("gpt-5", None) == (None, None)  # no catalog read: codex's fallback


def test_launch_writes_the_catalog_where_codex_reads_it(tmp_path: Path) -> None:
    agent = cast(Codex, build_agent("codex", agent_registry([])))
    agent.catalog, agent.catalog_source = catalog_for("gpt-5", {"models": [{"slug": "gpt-5.5"}]})
    launch = agent.launch(
        cast(SolveContext, SimpleNamespace(prompt="p", model_access=None)), tmp_path, "codex"
    )
    config = tomllib.loads(launch.files[".codex/config.toml"])
    assert config["model_catalog_json"] == str(tmp_path / ".codex" / "model-catalog.json")
    written = json.loads(launch.files[".codex/model-catalog.json"])
    assert [m["slug"] for m in written["models"]] == ["gpt-5.5", "gpt-5"]


def test_launch_defaults_to_gpt5_and_the_openai_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    agent = build_agent("codex", agent_registry([]))
    ctx = cast(SolveContext, SimpleNamespace(prompt="p", model_access=direct_access()))
    launch = cast(Codex, agent).launch(ctx, tmp_path, "codex")
    assert launch.argv[launch.argv.index("-m") + 1] == "gpt-5"
    provider = tomllib.loads(launch.files[".codex/config.toml"])["model_providers"]["isobench"]
    assert provider["base_url"] == "https://api.openai.com/v1" and "env_key" not in provider
    assert "OPENAI_API_KEY" not in launch.env


def test_find_cli_prefers_the_option_then_path_then_the_bundled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "codex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    agent = Codex.create("codex", None)
    given = tmp_path / "mine"
    given.write_text("#!/bin/sh\n")
    given.chmod(0o755)
    assert agent.find_cli(str(given)) == str(given)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert agent.find_cli(None) == str(fake)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bundled = bundled_codex()
    if bundled is None:
        with pytest.raises(ValueError, match=r"pytest-isobench\[agents\]"):
            agent.find_cli(None)
    else:
        assert agent.find_cli(None) == bundled


def test_an_empty_model_is_a_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match="codex:MODEL needs a model name"):
        build_agent("codex:", agent_registry([]))


def test_a_missing_cli_is_a_usage_error_naming_the_option_and_the_install(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--isobench-agent=codex", "--isobench-codex-cli=/nonexistent", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--isobench-codex-cli=/nonexistent" in err and INSTALL in err, err


# ---- the real codex, end to end ---------------------------------------------------------------------


def codex_cli() -> str | None:
    try:
        return Codex.create("codex", None).find_cli(None)
    except ValueError:
        return None


needs_codex = pytest.mark.skipif(codex_cli() is None, reason=f"no codex CLI: {INSTALL}")
SMOKE_TASK = "smoke-latency"


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-isobench-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start the fake model with a scenario; OPENAI_BASE_URL points at it."""
    servers: list[FakeResponses] = []

    def start(scenario: str) -> FakeResponses:
        fake = FakeResponses(scenario).__enter__()
        servers.append(fake)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        return fake

    yield start
    for fake in servers:
        fake.__exit__(None, None, None)


def codex_job(tmp_path: Path, spec: str, budget_min: float = 5.0) -> Job:
    task_file = SMOKE_ROOT / f"{SMOKE_TASK}.toml"
    base = replace(
        settings(tmp_path),
        agent=spec,
        run_id="run1",
        warmup=0,
        rounds=3,
        rounds_auto=True,
        min_rounds=3,
        max_rounds=8,
        time_budget_min=budget_min,
    )
    agent = build_agent(spec, agent_registry([]))
    cast(Codex, agent).configure(CliOptions(prices=None))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, base, "run1", LocalSandbox)


def assert_no_secret_in(art: Path, outcome: Outcome, key: str) -> None:
    """The key is in no artifact, nor redacted out of one (it never got there), nor in the outcome."""
    files = [p for p in art.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert key not in text, path
        assert "[redacted" not in text, path
    assert key not in json.dumps(outcome.to_wire())


def expected_tokens(responses: int) -> dict[str, int]:
    usages: list[Usage] = [usage_for(step) for step in range(responses)]
    return {
        "input": sum(u.input for u in usages),
        "output": sum(u.output for u in usages),
        "cached": sum(u.cached for u in usages),
    }


@needs_codex
def test_codex_applies_the_fix_and_records_the_servers_tokens(
    tmp_path: Path, canary: str, serve: Any
) -> None:
    fake = serve("fix")
    outcome = run_job(codex_job(tmp_path, "codex"))  # gpt-5, the paper's model: not in codex's catalog
    run = outcome.agent_run
    assert outcome.status == "ok" and run["stop_reason"] == "completed", run
    assert run["model"] == "gpt-5" and {r.body["model"] for r in fake.requests()} == {"gpt-5"}
    # A catalog entry copied from the closest catalog model gives it codex's apply_patch tool.
    assert run["catalog_entry_from"] == "gpt-5.5"  # the pinned codex's plain-Responses gpt-5 relative
    assert all("apply_patch" in offered_tools(r.body) for r in fake.requests())
    # The hard gate: the task's own fix, applied through codex's apply_patch.
    (fix,) = [f for f in smoke_fixes() if f.task_id == SMOKE_TASK]
    assert outcome.patch is not None and outcome.patch["files"] == [f.path for f in fix.files]
    assert outcome.hard in ("beats", "similar") or outcome.inconclusive, outcome.hard_detail
    sent = fake.sent
    assert sent.replies == len(fix.files) + 2  # read, patch, final message
    assert run["tokens"] == {"input": sent.input, "output": sent.output, "cached": sent.cached}
    assert run["turns"] == sent.replies
    assert run["cli_tokens"] == run["tokens"]  # codex's own count agrees with the gateway's
    assert run["cost_source"] == "gateway" and run["gateway"]["calls"] == sent.replies
    assert run["cost_usd"] == pytest.approx(cost_usd("gpt-5", sent.input, sent.output, sent.cached), abs=1e-6)
    art = Path(outcome.artifacts)
    steps = json.loads((art / "trajectory.json").read_text())["steps"]
    calls = [(s["tool"], s["input"]) for s in steps if s["kind"] == "tool_call"]
    assert calls[0][0] == "exec_command" and f"cat {fix.files[0].path}" in calls[0][1]["command"]
    assert calls[-1][0] == "apply_patch" and calls[-1][1]["changes"][0]["path"].endswith(fix.files[0].path)
    assert steps[-1]["kind"] == "model" and "made the change" in steps[-1]["text"]
    assert list(art.glob("agent.rollout-*.jsonl")) and (art / "agent.last_message.txt").is_file()
    assert not (art / "agent-home").exists()
    # The key went to the model API, and nowhere else.
    assert all(r.headers.get("authorization") == f"Bearer {canary}" for r in fake.requests())
    assert_no_secret_in(art, outcome, canary)


@needs_codex
def test_codex_fixes_the_smoke_task_in_its_container_through_the_gateway(
    tmp_path: Path, canary: str, serve: Any
) -> None:
    """The docker backend: codex runs from its agent layer in a container with no network, reaches the
    fake model only through the gateway's relay, and the key stays on the host."""
    need_docker()
    from pytest_isobench.sandbox import engine
    from pytest_isobench.sandbox.docker import DockerSandbox

    fake = serve("fix")
    local = codex_job(tmp_path, "codex")
    run_id = f"codex-docker-{uuid.uuid4().hex[:8]}"  # containers are counted per run
    docker = replace(local.settings, backend="docker", run_id=run_id)
    job = replace(local, settings=docker, run_id=run_id, sandbox_factory=DockerSandbox)
    outcome = run_job(job)
    run = outcome.agent_run
    assert outcome.status == "ok" and run["stop_reason"] == "completed", run
    (fix,) = [f for f in smoke_fixes() if f.task_id == SMOKE_TASK]
    assert outcome.patch is not None and outcome.patch["files"] == [f.path for f in fix.files]
    sent = fake.sent
    assert run["tokens"] == {"input": sent.input, "output": sent.output, "cached": sent.cached}
    assert run["cost_source"] == "gateway" and run["gateway"]["calls"] == sent.replies
    assert all(r.headers.get("authorization") == f"Bearer {canary}" for r in fake.requests())
    assert_no_secret_in(Path(outcome.artifacts), outcome, canary)
    assert engine.count_containers(run_id) == 0


@needs_codex
def test_a_failing_model_api_is_an_error_with_the_reason(tmp_path: Path, canary: str, serve: Any) -> None:
    fake = serve("error500")
    with pytest.raises(InfrastructureError, match="the model API failed: We\u2019re currently") as caught:
        run_job(codex_job(tmp_path, "codex"))
    outcome = caught.value.outcome
    assert outcome.status == "error" and outcome.error and "experiencing high demand" in outcome.error
    run = outcome.agent_run
    assert run["stop_reason"] == "api_error" and run["tokens"] == {"input": 0, "output": 0, "cached": 0}
    requests = fake.requests()
    assert run["gateway"]["calls"] == run["gateway"]["errors"] == len(requests)
    assert 1 < len(requests) <= (1 + REQUEST_RETRIES) * (1 + STREAM_RETRIES)  # bounded retries
    assert {r.body["model"] for r in requests} == {"gpt-5"}  # the default model
    assert_no_secret_in(Path(outcome.artifacts), outcome, canary)


def codex_processes(cli: str) -> set[int]:
    return set(marked(cli))


@needs_codex
def test_a_looping_model_is_stopped_by_the_time_budget_leaving_nothing(
    tmp_path: Path, canary: str, serve: Any
) -> None:
    cli = codex_cli()
    assert cli is not None
    fake = serve("daemon")
    before = codex_processes(cli)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the daemon the model started is really running during the attempt
        while not done.wait(0.2):
            seen.extend(marked(fake.marker))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        outcome = run_job(codex_job(tmp_path, "codex:gpt-5.5", budget_min=0.25))
    finally:
        done.set()
        watcher.join()
    run = outcome.agent_run
    assert run["stop_reason"] == "timeout" and run["timed_out"] is True, run
    assert seen, "the model's setsid daemon never ran"
    assert not marked(fake.marker)  # reaped with the attempt
    assert codex_processes(cli) <= before
    # Tokens spent until the kill: the gateway counted every response the model sent; codex's
    # session rollout, one known usage per response it recorded (the last may be missing).
    responses = run["turns"]
    assert responses >= 2 and fake.sent.replies - 1 <= responses <= fake.sent.replies
    assert run["cli_tokens"] == expected_tokens(responses)
    assert run["tokens"] == expected_tokens(fake.sent.replies)
    assert run["cost_source"] == "gateway" and run["cost_usd"] > 0
    art = Path(outcome.artifacts)
    assert list(art.glob("agent.rollout-*.jsonl"))
    commands = [s for s in json.loads((art / "trajectory.json").read_text())["steps"] if s.get("tool")]
    assert any(LOOP_COMMAND in str(s.get("input")) for s in commands)
    # The looping model ran `env`: the agent's commands never saw the key.
    assert "CODEX_HOME=" in (art / "agent.stdout.txt").read_text()
    assert_no_secret_in(art, outcome, canary)
    assert os.environ["OPENAI_API_KEY"] == canary


def test_the_registry_lists_codex_with_its_model_form() -> None:
    with pytest.raises(pytest.UsageError, match=r"known agents: .*codex\[:MODEL\], command:SHELL"):
        build_agent("gpt-17", agent_registry([]))


def test_the_fake_model_runs_standalone_and_answers_unstreamed_requests() -> None:
    script = Path(__file__).parent / "fake_responses_agent.py"
    server = subprocess.Popen(
        [sys.executable, str(script), "--scenario", "fix"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        assert line.startswith("OPENAI_BASE_URL=http://127.0.0.1:") and line.endswith("/v1")
        (fix,) = [f for f in smoke_fixes() if f.task_id == SMOKE_TASK]
        prompt = f"Bottleneck description: {fix.marker} and so on."
        body = {
            "model": "gpt-5",
            "stream": False,
            "input": [{"type": "message", "role": "user", "content": prompt}],
        }
        request = urllib.request.Request(
            line.partition("=")[2] + "/responses",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.loads(response.read())
        assert reply["object"] == "response" and reply["status"] == "completed"
        (item,) = reply["output"]
        assert item["name"] == "exec_command" and json.loads(item["arguments"]) == {
            "cmd": f"cat {fix.files[0].path}"
        }
        assert reply["usage"] == usage_for(0).to_wire()
    finally:
        server.terminate()
        server.communicate(timeout=30)


@needs_codex
def test_the_real_catalog_is_read_and_lacks_gpt5() -> None:
    cli = codex_cli()
    assert cli is not None
    catalog = model_catalog(cli)
    assert catalog is not None and len(catalog["models"]) > 1
    extended, source = catalog_for("gpt-5", catalog)
    assert extended is not None and source == "gpt-5.5"  # the pinned codex 0.163.0's catalog
