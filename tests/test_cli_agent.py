"""The shared runner of CLI agents (``agents/cli.py``), with a small shell script as the CLI.

The real CLIs have their own tests (``test_agent_*.py``); these check what the runner does for all of
them: the per-attempt home, the variables and files it gets, what is kept and removed, the trajectory,
the stop reasons the harness sets, model API failures as infrastructure errors, and the usage errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import ClassVar

import pytest

from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.cli import (
    HOME_NAME,
    TRAJECTORY_SCHEMA,
    Attempt,
    AttemptFiles,
    CliAgent,
    CliOptions,
    Launch,
    ModelApiError,
    Tokens,
    executable,
    jsonl_events,
)
from pytest_isobench.session import configure_agent
from support import write_source_task
from test_agents import ctx  # noqa: F401  (the fixture: a real task, working copy and local sandbox)
from test_local_sandbox import settings as local_settings

# The "CLI": records what it saw, edits the working copy, prints JSON events like a real CLI does.
SCRIPT = r"""#!/bin/sh
printf '{"type":"start","home":"%s","tmp":"%s","cfg":"%s","key":"%s"}\n' \
  "$HOME" "$TMPDIR" "$XDG_CONFIG_HOME" "${FAKE_KEY:-}"
cat "$HOME/conf/settings.toml" > /dev/null || exit 3
[ -r /dev/stdin ] && [ -z "$(cat)" ] || { echo "stdin is not empty" >&2; exit 4; }
echo "$1" > "$PWD/changed_by_cli.txt"
echo '{"turn":1}' > "$HOME/session.jsonl"
case "$MODE" in
  api) echo '{"type":"result","error":"HTTP 529 overloaded"}'; exit 1 ;;
  sleep) sleep 300 ;;
  crash) echo "Segmentation fault" >&2; exit 139 ;;
esac
echo '{"type":"result","turns":2,"input":1000,"output":200,"cached":100}'
"""


class ScriptAgent(CliAgent):
    family: ClassVar[str] = "script"
    default_model: ClassVar[str] = "claude-sonnet-4-5"
    install_hint: ClassVar[str] = "write the script"

    def __init__(self, script: Path, mode: str = "ok", cost: float | None = None) -> None:
        super().__init__("script-agent")
        self.script, self.mode, self.cost = script, mode, cost

    def find_cli(self, given: str | None) -> str:
        return executable(given or str(self.script), "--isobench-script-cli")

    def launch(self, context: SolveContext, home: Path, cli: str) -> Launch:
        return Launch(
            argv=[cli, "first argument; with $(no) expansion"],
            env={"MODE": self.mode, "FAKE_KEY": os.environ.get("FAKE_KEY", "")},
            files={"conf/settings.toml": "model = 'x'\n"},
        )

    def parse(self, files: AttemptFiles) -> Attempt:
        events = jsonl_events(files.stdout)
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        if result is None:
            return Attempt("crashed", error=files.stderr.read_text())
        if "error" in result:
            return Attempt("api_error", error=result["error"])
        tokens = Tokens(result["input"], result["output"], result["cached"])
        steps = [{"kind": "model", "text": "x" * 5000}, {"kind": "tool_call", "tool": "Bash"}]
        keep = [files.home / "session.jsonl"]
        return Attempt("completed", result["turns"], tokens, self.cost, steps=steps, keep=keep)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "fake-cli"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def configured(agent: CliAgent) -> CliAgent:
    agent.configure(CliOptions(max_turns=7))
    return agent


def test_an_attempt_runs_in_a_fresh_home_that_is_removed_after(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    stale = ctx.log_dir / HOME_NAME / "left-from-an-earlier-attempt"
    stale.mkdir(parents=True)
    run = configured(ScriptAgent(script)).solve(ctx)
    assert run.returncode == 0 and not run.timed_out
    start = jsonl_events(ctx.log_dir / "agent.stdout.txt")[0]
    home = ctx.log_dir / HOME_NAME
    assert start["home"] == str(home)
    assert start["tmp"] == str(home / "tmp") and start["cfg"] == str(home / "config")
    assert not home.exists()  # config, caches and all: gone once its records are kept
    assert (ctx.log_dir / "agent.session.jsonl").read_text() == '{"turn":1}\n'
    # argv is passed as words: no shell expansion of the prompt-like argument
    assert (ctx.workdir / "changed_by_cli.txt").read_text() == "first argument; with $(no) expansion\n"


def test_the_outcome_gets_tokens_turns_and_a_priced_cost(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    run = configured(ScriptAgent(script)).solve(ctx)
    info = run.info
    assert info["stop_reason"] == "completed" and info["turns"] == 2
    assert info["tokens"] == {"input": 1000, "output": 200, "cached": 100}
    assert info["model"] == "claude-sonnet-4-5" and info["cli"] == "script"
    # claude-sonnet-4-5 lists at $3 / $15 per million tokens
    assert info["cost_usd"] == pytest.approx((1000 * 3 + 200 * 15) / 1e6, rel=0.2)
    assert info["cost_source"] == "price_table"


def test_a_cost_the_cli_reports_is_kept_as_its_own(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    run = configured(ScriptAgent(script, cost=0.4321)).solve(ctx)
    assert run.info["cost_usd"] == 0.4321 and run.info["cost_source"] == "cli"


def test_trajectory_json_follows_the_schema(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    configured(ScriptAgent(script)).solve(ctx)
    record = json.loads((ctx.log_dir / "trajectory.json").read_text())
    assert record["schema"] == TRAJECTORY_SCHEMA and record["agent"] == "script-agent"
    assert [s["index"] for s in record["steps"]] == [0, 1]
    assert record["steps"][1] == {"index": 1, "kind": "tool_call", "tool": "Bash"}
    assert len(record["steps"][0]["text"]) < 4100 and "characters cut" in record["steps"][0]["text"]
    assert record["totals"]["turns"] == 2 and record["totals"]["stop_reason"] == "completed"


def test_a_model_api_failure_is_an_infrastructure_error(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    with pytest.raises(ModelApiError, match="HTTP 529 overloaded") as raised:
        configured(ScriptAgent(script, mode="api")).solve(ctx)
    assert raised.value.agent_run["stop_reason"] == "api_error" and raised.value.agent_run["returncode"] == 1
    assert not (ctx.log_dir / HOME_NAME).exists()


def test_a_crash_is_the_agents_outcome_with_its_stderr(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    run = configured(ScriptAgent(script, mode="crash")).solve(ctx)
    assert run.returncode == 139
    assert run.info["stop_reason"] == "crashed" and "Segmentation fault" in run.info["error"]


def test_the_time_budget_stops_it_and_says_timeout(ctx: SolveContext, script: Path) -> None:  # noqa: F811
    short = SolveContext(**{**ctx.__dict__, "time_budget_s": 2.0})
    run = configured(ScriptAgent(script, mode="sleep")).solve(short)
    assert run.timed_out and run.returncode is None
    assert run.info["stop_reason"] == "timeout"
    assert (ctx.workdir / "changed_by_cli.txt").exists()  # its work so far is its patch


def test_config_files_are_private_while_they_exist(ctx: SolveContext, script: Path, tmp_path: Path) -> None:  # noqa: F811
    seen = tmp_path / "mode.txt"
    script.write_text(
        SCRIPT.replace("#!/bin/sh\n", f'#!/bin/sh\nstat -c %a "$HOME/conf/settings.toml" > {seen}\n')
    )
    configured(ScriptAgent(script)).solve(ctx)
    assert seen.read_text().strip() == "600"


def test_a_missing_cli_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    agent = ScriptAgent(tmp_path / "absent")
    settings = dataclasses.replace(local_settings(tmp_path), agent="script-agent")
    with pytest.raises(
        pytest.UsageError, match=r"--isobench-agent=script-agent: --isobench-script-cli=.*absent"
    ):
        configure_agent(agent, settings)


def test_executable_rejects_folders_and_plain_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    for given in (str(tmp_path), str(plain)):
        with pytest.raises(ValueError, match=r"--opt=.*not an executable file"):
            executable(given, "--opt")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--isobench-agent-max-turns=0", "*--isobench-agent-max-turns: '0' must be at least 1*"),
        ("--isobench-agent-max-turns=many", "*--isobench-agent-max-turns: 'many' is not a valid int*"),
        ("--isobench-agent-budget-usd=free", "*--isobench-agent-budget-usd: 'free' is not a valid float*"),
        ("--isobench-agent-max-tokens=0", "*--isobench-agent-max-tokens: '0' must be at least 1*"),
    ],
)
def test_bad_limits_are_usage_errors(pytester: pytest.Pytester, option: str, message: str) -> None:
    write_source_task(pytester.path / "tasks", "toy-one")
    tasks = f"--isobench-tasks={pytester.path / 'tasks'}"
    result = pytester.runpytest("--isobench-agent=human", tasks, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_limits_reach_the_agent_and_none_lifts_them(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json, pytest
        from pytest_isobench.keys import SETTINGS_KEY

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            s = config.stash[SETTINGS_KEY]
            print("LIMITS", json.dumps([s.agent_max_turns, s.agent_budget_usd, s.cli_paths,
                                        s.agent_max_tokens, s.agent_network]))
        """
    )
    write_source_task(pytester.path / "tasks", "toy-one")
    tasks = f"--isobench-tasks={pytester.path / 'tasks'}"
    default = pytester.runpytest_subprocess("--isobench-agent=human", tasks, "--collect-only", "-s")
    default.stdout.fnmatch_lines(['LIMITS [120, null, {}, null, "auto"]'])
    given = pytester.runpytest_subprocess(
        "--isobench-agent=human", tasks, "--collect-only", "-s", "--isobench-agent-max-turns=none",
        "--isobench-agent-budget-usd=2.5", "--isobench-codex-cli=/opt/codex",
        "--isobench-agent-max-tokens=50000", "--isobench-agent-network=bridge",
    )  # fmt: skip
    given.stdout.fnmatch_lines(['LIMITS [null, 2.5, {"codex": "/opt/codex"}, 50000, "bridge"]'])
