"""TRAE-agent: the parser on real trajectories, and whole attempts with the stand-in ``trae-cli``
(tests/trae_stand_in.py) talking HTTP to a scripted fake model (tests/fake_trae_model.py).

With ``ISOBENCH_TRAE_CLI`` naming a real ``trae-cli``, one more test runs it against the fake model.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from fake_trae_model import CHAT, MESSAGES, RESPONSES, FakeTraeModel
from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.cli import AttemptFiles, CliOptions, ModelApiError
from pytest_isobench.agents.prompt import render_prompt
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.agents.trae import (
    CONFIG_NAME,
    INSTALL_HINT,
    Trae,
    attempt_from_trajectory,
    is_api_error,
    read_trajectory,
)
from pytest_isobench.gateway import direct_access
from pytest_isobench.pipeline import oracle_patch
from pytest_isobench.pricing import DEFAULT_PRICES
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.sandbox.procs import RunResult
from pytest_isobench.sandbox.repos import materialise
from smoke_fixes import fix_for
from support import load
from test_local_sandbox import settings
from test_procs import marked, wait_for

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "agent-clis"
STAND_IN = Path(__file__).parent / "trae_stand_in.py"
SMOKE_LATENCY = ROOT / "tasks" / "smoke" / "smoke-latency.toml"
REAL_CLI = os.environ.get("ISOBENCH_TRAE_CLI", "")


def agent(spec: str) -> Trae:
    built = build_agent(spec, agent_registry([]))
    assert isinstance(built, Trae)
    return built


# ---- the registry ------------------------------------------------------------------------------------


def test_registry_names_and_providers() -> None:
    gpt5, sonnet = agent("trae-gpt5"), agent("trae-sonnet45")
    assert (gpt5.provider.name, gpt5.model) == ("openai", "gpt-5")
    assert (sonnet.provider.name, sonnet.model) == ("anthropic", "claude-sonnet-4-5")
    router = agent("trae:openrouter/anthropic/claude-sonnet-4.5")
    assert (router.provider.name, router.model, router.family) == (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        "trae",
    )
    for bad, words in [
        ("trae", "trae:PROVIDER/MODEL"),
        ("trae:gpt-5", "trae:PROVIDER/MODEL"),
        ("trae:azure/gpt-5", "unknown provider 'azure'; known providers: openai, anthropic, openrouter"),
        ("trae-gpt5:gpt-4.1", "takes no model"),
    ]:
        with pytest.raises(pytest.UsageError, match=words):
            build_agent(bad, agent_registry([]))


# ---- the parser on real trajectories -----------------------------------------------------------------


def parse_fixture(name: str, provider: str = "openai"):  # type: ignore[no-untyped-def]
    data = json.loads((DATA / name).read_text())
    return attempt_from_trajectory(data, provider)


def test_parse_real_edit_trajectory() -> None:
    attempt = parse_fixture("trae_edit_trajectory.json")
    assert attempt.stop_reason == "completed" and attempt.error is None
    assert attempt.turns == 3 and attempt.model == "gpt-4.1"
    # OpenAI's input_tokens already hold the cached ones
    assert attempt.tokens is not None
    assert attempt.tokens.to_wire() == {
        "input": 3043 + 3128 + 3335,
        "output": 75,
        "cached": 1521 + 1564 + 1667,
    }
    kinds = [(s["kind"], s.get("tool")) for s in attempt.steps]
    assert kinds == [
        ("model", None),
        ("tool_call", "bash"),
        ("tool_result", "bash"),
        ("model", None),
        ("tool_call", "str_replace_based_edit_tool"),
        ("tool_result", "str_replace_based_edit_tool"),
        ("model", None),
        ("tool_call", "task_done"),
    ]
    assert attempt.steps[0]["tokens"] == {"input": 3043, "output": 25, "cached": 1521}
    assert attempt.steps[1]["input"] == {"command": "cat hello.py", "restart": False}
    assert (
        attempt.steps[2]["output"] == 'def greet():\n    return "hello"' and not attempt.steps[2]["is_error"]
    )


def test_parse_real_max_steps_and_500_trajectories() -> None:
    steps = parse_fixture("trae_maxsteps_trajectory.json")
    assert steps.stop_reason == "max_turns" and steps.turns == 3 and steps.error is None
    failed = parse_fixture("trae_500_trajectory.json")
    assert failed.stop_reason == "api_error" and failed.turns == 0
    assert (
        failed.error is not None
        and "Error code: 500" in failed.error
        and "Internal server error" in failed.error
    )
    assert failed.tokens is not None and failed.tokens.to_wire() == {"input": 0, "output": 0, "cached": 0}


def test_anthropic_input_counts_cache_reads_and_writes() -> None:
    data = json.loads((DATA / "trae_edit_trajectory.json").read_text())
    for interaction in data["llm_interactions"]:
        interaction["provider"] = "anthropic"
        interaction["response"]["usage"].update(cache_creation_input_tokens=7)
    attempt = attempt_from_trajectory(data, "anthropic")
    assert attempt.tokens is not None
    assert attempt.tokens.input == 3043 + 3128 + 3335 + 1521 + 1564 + 1667 + 3 * 7


@pytest.mark.parametrize(
    ("error", "api"),
    [
        ("Error code: 500 - {'error': {'message': 'boom'}}", True),
        ("Error code: 401 - {'error': {'message': 'invalid x-api-key'}}", True),
        ("Error code: 429 - rate limited", True),
        ("Connection error.", True),
        ("Request timed out.", True),
        ("Error code: 400 - {'error': {'message': 'bad tool schema'}}", False),
        ("Expecting value: line 1 column 1 (char 0)", False),
    ],
)
def test_which_step_errors_are_the_apis(error: str, api: bool) -> None:
    assert is_api_error(error) is api
    data = json.loads((DATA / "trae_500_trajectory.json").read_text())
    data["agent_steps"][0]["error"] = error
    attempt = attempt_from_trajectory(data, "openai")
    assert attempt.stop_reason == ("api_error" if api else "crashed") and attempt.error == error


def test_no_trajectory_is_a_crash_with_the_stderr_tail(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("Changed working directory to: /x\n")
    (tmp_path / "err").write_text(
        "Traceback (most recent call last):\nModuleNotFoundError: No module named 'docker'\n"
    )
    (tmp_path / "torn.json").write_text('{"task": "x", "llm_inter')
    assert read_trajectory(tmp_path / "torn.json") is None
    files = AttemptFiles(
        tmp_path,
        tmp_path / "out",
        tmp_path / "err",
        RunResult(1, False, 0.5, tmp_path / "out", tmp_path / "err"),
    )
    attempt = Trae.create("trae", "openai/gpt-5").parse(files)
    assert attempt.stop_reason == "crashed" and attempt.keep == []
    assert (
        attempt.error is not None
        and "exit code 1" in attempt.error
        and "No module named 'docker'" in attempt.error
    )


# ---- finding the CLI ---------------------------------------------------------------------------------


def stand_in_cli(folder: Path) -> Path:
    """The stand-in as an executable named ``trae-cli``, run by this interpreter (it needs the SDKs)."""
    folder.mkdir(parents=True, exist_ok=True)
    cli = folder / "trae-cli"
    cli.write_text(f'#!/bin/sh\nexec {sys.executable} {STAND_IN} "$@"\n')
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return cli


def test_find_cli_option_then_path_then_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = stand_in_cli(tmp_path / "bin")
    trae = agent("trae-gpt5")
    assert trae.find_cli(str(cli)) == str(cli.resolve())
    with pytest.raises(ValueError, match=r"--isobench-trae-cli=.*not an executable file"):
        trae.find_cli(str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(cli.parent))
    assert trae.find_cli(None) == str(cli)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="no trae-cli found") as info:
        trae.find_cli(None)
    assert "bytedance/trae-agent" in str(info.value) and "Python >= 3.12" in str(info.value)
    assert "uv.lock" in INSTALL_HINT and "pexpect" in INSTALL_HINT


def test_missing_key_is_named_at_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = stand_in_cli(tmp_path / "bin")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ValueError, match="trae-sonnet45 needs ANTHROPIC_API_KEY"):
        agent("trae-sonnet45").configure(CliOptions(cli_paths={"trae": str(cli)}))


def plugin_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ISOBENCH_"))}
    return {**env, **extra}


def test_without_trae_cli_a_run_says_how_to_install_and_collect_only_needs_none(tmp_path: Path) -> None:
    env = plugin_env(PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin", OPENAI_API_KEY="sk-test")
    base = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--isobench-runs-dir={tmp_path / 'runs'}",
    ]
    run = subprocess.run([*base, "--isobench-agent=trae-gpt5", "-m", "smoke"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 4, run.stdout + run.stderr
    assert (
        "--isobench-agent=trae-gpt5: no trae-cli found" in run.stderr and "bytedance/trae-agent" in run.stderr
    )
    listed = subprocess.run([*base, "--isobench-agent=trae-gpt5", "-k", "sglang", "--collect-only", "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "sglang" in listed.stdout and "no trae-cli" not in listed.stdout + listed.stderr


# ---- whole attempts with the stand-in ----------------------------------------------------------------


@pytest.fixture
def ctx(tmp_path: Path) -> SolveContext:
    """The smoke-latency task's working copy, local backend."""
    task = load(SMOKE_LATENCY)
    repo = materialise(task, SMOKE_LATENCY, tmp_path / "cache" / "repos")
    box = LocalSandbox(SandboxSpec(task, SMOKE_LATENCY, repo, tmp_path / "ws", settings(tmp_path)))
    workdir = box.agent_workdir()
    prompt = render_prompt(task, workdir)
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt)
    logs = tmp_path / "logs"
    logs.mkdir()
    return SolveContext(
        task, workdir, prompt, prompt_file, 120, logs, box, lambda: oracle_patch(repo, task),
        model_access=direct_access(),  # this environment's URLs and keys (set by each test)
    )  # fmt: skip


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"sk-canary-{secrets.token_hex(12)}"
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.setenv(name, value)
    return value


def model_server(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> FakeTraeModel:
    """A started fake model (``close()`` it), its URLs in the providers' base URL variables."""
    fake = FakeTraeModel(**kw).__enter__()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
    return fake


def configured(spec: str, tmp_path: Path, cli: str | None = None, max_turns: int | None = 20) -> Trae:
    trae = agent(spec)
    trae.configure(
        CliOptions(max_turns=max_turns, cli_paths={"trae": cli or str(stand_in_cli(tmp_path / "bin"))})
    )
    return trae


def expected_cost(model: str, totals: dict[str, int]) -> float | None:
    """The list price of the server's tokens: fresh input, cached input and output at their rates."""
    if model not in DEFAULT_PRICES:
        return None
    fresh, output, cached = DEFAULT_PRICES[model]
    return (
        (totals["input"] - totals["cached"]) * fresh + totals["cached"] * cached + totals["output"] * output
    ) / 1e6


def files_holding(root: Path, value: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


@pytest.mark.parametrize(("spec", "wire"), [("trae-gpt5", RESPONSES), ("trae-sonnet45", MESSAGES),
                                            ("trae:openrouter/qwen/qwen3-coder", CHAT)])  # fmt: skip
def test_fix_through_the_stand_in_on_each_wire_api(
    ctx: SolveContext, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch, spec: str, wire: str
) -> None:
    fake = model_server(monkeypatch, scenario="fix")
    try:
        run = configured(spec, tmp_path).solve(ctx)
    finally:
        fake.close()
    assert set(fake.paths()) == {wire}  # openrouter: chat completions; openai: Responses; anthropic: Messages
    info = run.info
    fix = fix_for(ctx.prompt)
    assert fix is not None
    assert info["stop_reason"] == "completed" and run.returncode == 0, info
    assert info["turns"] == 2 * len(fix.files) + 1 == len(fake.received)
    assert info["tokens"] == fake.totals
    expected = expected_cost(info["model"], fake.totals)
    if expected is None:  # an OpenRouter model the table does not know
        assert info["cost_usd"] is None and info["cost_source"] is None
    else:
        assert info["cost_usd"] == pytest.approx(expected, abs=1e-6) and info["cost_source"] == "price_table"
    patch = ctx.sandbox.extract_patch()
    for f in fix.files:
        assert f"+++ b/{f.path}" in patch
        assert (ctx.workdir / f.path).read_text() == f.new
    touched = re.findall(r"^\+\+\+ b/(.+)$", patch, re.MULTILINE)
    assert sorted(touched) == sorted(f.path for f in fix.files)  # no trajectory, patch or config in it
    kept = json.loads((ctx.log_dir / "agent.trae_trajectory.json").read_text())
    assert kept["success"] is True
    assert shape(kept) == shape(json.loads((DATA / "trae_edit_trajectory.json").read_text()))  # TRAE's format
    normalised = json.loads((ctx.log_dir / "trajectory.json").read_text())
    assert normalised["totals"]["tokens"] == fake.totals and normalised["agent"] == spec.partition(":")[0]
    assert [s["tool"] for s in normalised["steps"] if s["kind"] == "tool_call"][-1] == "task_done"
    assert not (ctx.log_dir / "agent-home").exists()
    # the key reached the model only through the environment: never a file
    sent = {
        r.headers.get("authorization", "").removeprefix("Bearer ") or r.headers.get("x-api-key")
        for r in fake.received
    }
    assert sent == {key}
    assert not files_holding(tmp_path, key)


def run_smoke_latency(tmp_path: Path, cli: Path, fake: FakeTraeModel, key: str, *extra: str) -> dict:  # type: ignore[type-arg]
    report = tmp_path / "report.json"
    argv = [
        sys.executable, "-m", "pytest", "--isobench-agent=trae-gpt5", f"--isobench-trae-cli={cli}",
        "--isobench-agent-max-turns=20", "-m", "smoke", "-k", "smoke-latency", "-p", "no:cacheprovider",
        f"--isobench-runs-dir={tmp_path / 'runs'}", f"--isobench-cache-dir={tmp_path / 'cache'}",
        "--json-report", f"--json-report-file={report}", *extra,
    ]  # fmt: skip
    env = plugin_env(OPENAI_API_KEY=key, OPENAI_BASE_URL=fake.openai_base_url)
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    (test,) = json.loads(report.read_text())["tests"]
    outcome: dict = test["user_properties"][0]["isobench"]  # type: ignore[type-arg]
    outcome["_returncode"], outcome["_output"] = run.returncode, run.stdout[-3000:] + run.stderr[-2000:]
    return outcome


def test_smoke_task_fixed_through_trae_passes_the_hard_gate(tmp_path: Path, key: str) -> None:
    cli = stand_in_cli(tmp_path / "bin")
    with FakeTraeModel(scenario="fix") as fake:
        outcome = run_smoke_latency(tmp_path, cli, fake, key)
        if outcome["hard"] not in ("beats", "similar") and outcome.get("inconclusive"):
            # a busy machine's noise around the band: measure once more (a confident miss still fails)
            fake.totals = dict.fromkeys(fake.totals, 0)
            fake.received.clear()
            outcome = run_smoke_latency(tmp_path, cli, fake, key, "--isobench-remeasure")
    assert outcome["_returncode"] == 0, outcome["_output"]
    assert outcome["hard"] in ("beats", "similar") and outcome["correctness"] == "pass", outcome
    run = outcome["agent_run"]
    assert run["cli"] == "trae" and run["model"] == "gpt-5" and run["stop_reason"] == "completed"
    assert run["tokens"] == fake.totals and run["turns"] == len(fake.received)
    expected = expected_cost("gpt-5", fake.totals)
    assert run["cost_usd"] == pytest.approx(expected, abs=2e-6) and run["cost_source"] == "gateway"
    assert run["cli_tokens"] == run["tokens"]  # TRAE's own trajectory agrees with the gateway's count
    kept = json.loads((Path(outcome["artifacts"]) / "agent.trae_trajectory.json").read_text())
    assert kept["max_steps"] == 20  # --isobench-agent-max-turns reached trae-cli's --max-steps
    assert not files_holding(tmp_path, key)


def test_config_holds_no_key_and_the_real_flags(ctx: SolveContext, tmp_path: Path, key: str) -> None:
    trae = configured("trae-gpt5", tmp_path, max_turns=7)
    home = tmp_path / "home"
    launch = trae.launch(ctx, home, "trae-cli")
    argv = launch.argv
    assert argv[:3] == ["trae-cli", "run", ctx.prompt]
    flags = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert flags == {
        "--config-file": str(home / CONFIG_NAME),
        "--working-dir": str(ctx.workdir),
        "--max-steps": "7",
        "--trajectory-file": str(home / "trae_trajectory.json"),
        "--patch-path": str(home / "trae.patch"),
        "--console-type": "simple",
    }
    config = launch.files[CONFIG_NAME]
    assert key not in config and 'api_key: ""' in config and "enable_lakeview: false" in config
    assert launch.env["OPENAI_API_KEY"] == key
    from trae_stand_in import read_yaml

    parsed = read_yaml(config)
    assert parsed["agents"]["trae_agent"]["max_steps"] == 7
    assert parsed["agents"]["trae_agent"]["tools"] == [
        "bash",
        "str_replace_based_edit_tool",
        "sequentialthinking",
        "task_done",
    ]
    assert parsed["model_providers"]["openai"]["base_url"] == os.environ.get(
        "OPENAI_BASE_URL", "https://api.openai.com/v1"
    )
    yaml = pytest.importorskip("yaml")  # the same reading as TRAE's own loader (PyYAML), where installed
    assert yaml.safe_load(config) == parsed


def test_model_500_is_an_infrastructure_error_with_the_reason(
    ctx: SolveContext, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = model_server(monkeypatch, scenario="error500")
    try:
        with pytest.raises(
            ModelApiError, match=r"the model API failed: Error code: 500.*Internal server error"
        ) as info:
            configured("trae-gpt5", tmp_path).solve(ctx)
    finally:
        fake.close()
    assert len(fake.received) == 3  # the SDK's own two retries, none of TRAE's
    assert info.value.agent_run["stop_reason"] == "api_error" and info.value.agent_run["returncode"] == 0
    trajectory = json.loads((ctx.log_dir / "trajectory.json").read_text())
    assert trajectory["totals"]["stop_reason"] == "api_error"
    assert json.loads((ctx.log_dir / "agent.trae_trajectory.json").read_text())["success"] is False


def shape(trajectory: dict[str, Any]) -> tuple[set[str], set[str], set[str], set[str]]:
    """The keys of a trajectory, of its interactions, their usage, and of its agent steps."""
    interaction, step = trajectory["llm_interactions"][0], trajectory["agent_steps"][0]
    return set(trajectory), set(interaction), set(interaction["response"]["usage"]), set(step)


def test_a_crashing_cli_is_crashed_with_its_stderr_tail(ctx: SolveContext, tmp_path: Path, key: str) -> None:
    cli = tmp_path / "bin" / "trae-cli"
    cli.parent.mkdir()
    cli.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named pexpect' >&2\nexit 1\n")
    cli.chmod(0o755)
    run = configured("trae-gpt5", tmp_path, cli=str(cli)).solve(ctx)
    assert run.returncode == 1 and run.info["stop_reason"] == "crashed"
    assert "exit code 1" in run.info["error"] and "No module named pexpect" in run.info["error"]
    assert run.info["tokens"] is None and run.info["cost_usd"] is None


def test_refused_connection_is_an_infrastructure_error(
    ctx: SolveContext, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTraeModel()  # bound, never served: a port that refuses
    port = fake.server.server_address[1]
    fake.server.server_close()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelApiError, match="Connection error"):
        configured("trae-sonnet45", tmp_path).solve(ctx)


def test_loop_stops_at_max_turns_and_its_patch_counts(
    ctx: SolveContext, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = model_server(monkeypatch, scenario="loop")
    try:
        run = configured("trae-gpt5", tmp_path, max_turns=3).solve(ctx)
    finally:
        fake.close()
    assert run.info["stop_reason"] == "max_turns" and run.info["turns"] == 3 == len(fake.received)
    assert run.returncode == 0 and not run.timed_out
    assert run.info["tokens"] == fake.totals


def test_time_budget_stops_a_looping_agent_and_its_setsid_daemon(
    ctx: SolveContext, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"isobench-trae-{uuid.uuid4().hex}"
    flag = tmp_path / "daemon-started"
    before = len(marked(marker))
    fake = model_server(monkeypatch, scenario="daemon", marker=marker, flag=str(flag))
    short = SolveContext(**{**ctx.__dict__, "time_budget_s": 20.0})
    try:
        run = configured("trae-gpt5", tmp_path, max_turns=None).solve(short)
    finally:
        fake.close()
    assert flag.exists(), "the daemon never started"  # the attempt really left something to reap
    assert run.timed_out and run.info["stop_reason"] == "timeout", run.info
    assert len(fake.received) >= 2 and run.info["turns"] >= 1
    assert wait_for(lambda: len(marked(marker)) == before, 30), marked(marker)
    assert before == 0


def test_key_echoed_by_the_model_reaches_no_artifact(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the pipeline: the model writes the key into TRAE's records; the artifacts hold none."""
    from pytest_isobench.pipeline import InfrastructureError, Job, run_job
    from pytest_isobench.tasks import LoadedTask

    fake = model_server(monkeypatch, scenario="error500")
    trae = configured("trae-gpt5", tmp_path)
    base = settings(tmp_path)
    job = Job(LoadedTask(load(SMOKE_LATENCY), SMOKE_LATENCY), trae, "trae-gpt5", base, "r", LocalSandbox)
    try:
        with pytest.raises(InfrastructureError) as info:
            run_job(job)
        assert "Error code: 500" in str(info.value)
        assert info.value.outcome.status == "error"
        fake.scenario, fake.echo_key = "fix", True
        job = Job(LoadedTask(load(SMOKE_LATENCY), SMOKE_LATENCY), trae, "trae-gpt5", base, "r2", LocalSandbox)
        outcome = run_job(job)
    finally:
        fake.close()
    assert outcome.agent_run is not None and outcome.agent_run["stop_reason"] == "completed"
    art = Path(outcome.artifacts)
    kept = (art / "agent.trae_trajectory.json").read_text()
    assert "the key I was sent:" in kept  # the model did write it down...
    assert not files_holding(tmp_path, key)  # ...and no file of the run holds it


# ---- a real trae-cli ---------------------------------------------------------------------------------


REAL_CASES = [
    ("trae-gpt5", "fix", RESPONSES),
    ("trae-sonnet45", "fix", MESSAGES),
    ("trae:openrouter/qwen/qwen3-coder", "fix", CHAT),
    ("trae-gpt5", "error500", RESPONSES),
    ("trae-gpt5", "loop", RESPONSES),
]


@pytest.mark.skipif(
    not REAL_CLI, reason="set ISOBENCH_TRAE_CLI to a real trae-cli to run it against the fake model"
)
@pytest.mark.parametrize(("spec", "scenario", "wire"), REAL_CASES)
def test_real_trae_cli(
    ctx: SolveContext,
    tmp_path: Path,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    scenario: str,
    wire: str,
) -> None:
    fake = model_server(monkeypatch, scenario=scenario)
    trae = configured(spec, tmp_path, cli=shutil.which(REAL_CLI) or REAL_CLI, max_turns=4)
    try:
        if scenario == "error500":
            with pytest.raises(ModelApiError, match="Error code: 500"):
                trae.solve(ctx)
            return
        run = trae.solve(ctx)
    finally:
        fake.close()
        assert set(fake.paths()) == {wire}
        assert not files_holding(tmp_path, key)
    assert run.returncode == 0
    assert run.info["tokens"] == fake.totals and run.info["turns"] == len(fake.received)
    if scenario == "loop":
        assert run.info["stop_reason"] == "max_turns" and run.info["turns"] == 4, run.info
        return
    assert run.info["stop_reason"] == "completed", run.info
    kept = json.loads((ctx.log_dir / "agent.trae_trajectory.json").read_text())
    assert shape(kept) == shape(json.loads((DATA / "trae_edit_trajectory.json").read_text()))
    fix = fix_for(ctx.prompt)
    assert fix is not None
    for f in fix.files:
        assert (ctx.workdir / f.path).read_text() == f.new
    touched = re.findall(r"^\+\+\+ b/(.+)$", ctx.sandbox.extract_patch(), re.MULTILINE)
    assert sorted(touched) == sorted(f.path for f in fix.files)  # TRAE left nothing else in the working copy
