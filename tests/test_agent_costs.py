"""What agent attempts spent: prices with cached input, the per-agent block in the summary, the JSON
report, JUnit and ``summarize``; the one price option for judges and agents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.cli import Attempt, AttemptFiles, CliAgent, Launch, Tokens
from pytest_isobench.pricing import DEFAULT_PRICES, cost_usd, load_prices, price_table
from pytest_isobench.report import RunCollector, _task_line, _task_row, agent_costs, render_agent_costs
from pytest_isobench.results import Outcome
from support import ANCHOR, write_source_task

FAST = ["--isobench-rounds=3", "--isobench-warmup=0", "-p", "no:cacheprovider"]
TITLE = "agents' spending (latest attempt per task; USD; input tokens include the cached)"


# -- prices ------------------------------------------------------------------------------------------


def test_cached_input_costs_the_cached_figure() -> None:
    # gpt-5: 1.25 input, 10 output, 0.125 cached: 400k x 1.25 + 600k x 0.125 + 100k x 10 per million
    assert cost_usd("gpt-5", 1_000_000, 100_000, 600_000) == pytest.approx(1.575)
    assert cost_usd("gpt-5", 1_000_000, 100_000) == pytest.approx(2.25)  # nothing cached
    # a dated id takes its prefix's price, cached figure included: 500k x 3 + 500k x 0.3
    assert cost_usd("claude-sonnet-4-5-20250929", 1_000_000, 0, 500_000) == pytest.approx(1.65)
    # more cached than input (a CLI's odd report) never prices negative input
    assert cost_usd("gpt-5", 1_000, 0, 5_000) == pytest.approx(1_000 * 0.125 / 1e6)
    assert cost_usd("no-such-model", 10, 10, 5) is None


def test_two_figure_entries_price_cached_as_input_three_figure_ones_their_own() -> None:
    table = price_table({"two": (2.0, 4.0), "three": (2.0, 4.0, 0.2), "gpt-5": (3.0, 30.0)})
    assert cost_usd("two", 1_000_000, 0, 1_000_000, table=table) == pytest.approx(2.0)
    assert cost_usd("three", 1_000_000, 0, 1_000_000, table=table) == pytest.approx(0.2)
    # an override replaces the whole default price, its cached figure too
    assert cost_usd("gpt-5", 1_000_000, 0, 1_000_000, table=table) == pytest.approx(3.0)
    assert cost_usd("claude-haiku-4-5", 1_000_000, 0, 1_000_000, table=table) == pytest.approx(0.1)


def test_default_cached_figures() -> None:
    for model, price in DEFAULT_PRICES.items():
        assert len(price) == 3, model
        if model.startswith(("claude-", "gpt-5")):  # Anthropic cache reads and gpt-5: a tenth of input
            assert price[2] == pytest.approx(price[0] / 10), model
    assert DEFAULT_PRICES["gpt-4.1"][2] == pytest.approx(0.5)
    assert DEFAULT_PRICES["gpt-4o"][2] == pytest.approx(1.25)


def test_price_file_takes_an_optional_cached_figure(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('"m3" = [1, 8, 0.1]\n"m2" = [1.5, 6]\n')
    assert load_prices(tmp_path / "p.toml") == {"m3": (1.0, 8.0, 0.1), "m2": (1.5, 6.0)}
    (tmp_path / "p.json").write_text('{"m": [1, 2, 3, 4]}')
    with pytest.raises(
        ValueError, match=r"p\.json: 'm': expected \[input, output\] or \[input, output, cached"
    ):
        load_prices(tmp_path / "p.json")
    (tmp_path / "n.json").write_text('{"m": [1, 2, -0.1]}')
    with pytest.raises(ValueError, match=r"n\.json: 'm'"):
        load_prices(tmp_path / "n.json")


class Priced(CliAgent):
    """Only for Attempt.info: the agent's family and model."""

    family = "codex"
    default_model = "gpt-5"
    install_hint = "none needed"

    def find_cli(self, given: str | None) -> str:
        return sys.executable

    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        raise NotImplementedError

    def parse(self, files: AttemptFiles) -> Attempt:
        raise NotImplementedError


def test_attempt_prices_its_cached_tokens() -> None:
    agent = Priced("codex")
    attempt = Attempt("completed", turns=3, tokens=Tokens(input=1_000_000, output=100_000, cached=600_000))
    info = attempt.info(agent, None)
    assert (info["cost_usd"], info["cost_source"], info["model"]) == (1.575, "price_table", "gpt-5")
    info = attempt.info(agent, {"gpt-5": (2.0, 10.0, 1.0)})  # 400k x 2 + 600k x 1 + 100k x 10
    assert info["cost_usd"] == pytest.approx(2.4)
    attempt.cost_usd = 0.5  # the CLI's own figure wins
    assert attempt.info(agent, None)["cost_usd"] == 0.5 and attempt.info(agent, None)["cost_source"] == "cli"


# -- the per-agent block -----------------------------------------------------------------------------


def spent(
    task: str,
    agent: str,
    stop: str,
    tokens: tuple[int, int, int] | None,
    cost: float | None,
    source: str | None,
    *,
    turns: int | None = None,
    duration: float = 10.0,
) -> Outcome:
    run: dict[str, Any] = {
        "returncode": 0 if stop == "completed" else 1,
        "timed_out": stop == "timeout",
        "duration_s": duration,
        "cli": agent.split(":")[0],
        "model": "gpt-5" if agent.startswith("codex") else "claude-sonnet-4-5",
        "stop_reason": stop,
        "turns": turns,
        "tokens": None if tokens is None else dict(zip(("input", "output", "cached"), tokens, strict=True)),
        "cost_usd": cost,
        "cost_source": source,
    }
    hard = "failed" if stop != "completed" else "similar"
    return Outcome(task_id=task, repo="vllm", agent=agent, run_id="r", hard=hard, agent_run=run)


def api_error(task: str, agent: str) -> Outcome:
    """What the pipeline records when the agent's model API failed: E, no agent_run."""
    error = f"ModelApiError: {agent}: the model API failed: HTTP 500 Internal Server Error"
    return Outcome(task_id=task, repo="vllm", agent=agent, run_id="r", status="error", error=error)


def human(task: str) -> Outcome:
    run = {"returncode": 0, "timed_out": False, "duration_s": 0.2}
    return Outcome(task_id=task, repo="vllm", agent="human", run_id="r", hard="similar", agent_run=run)


OUTCOMES = [
    # claude-code: every cost from the CLI; 0.05 + 0.12 + 0.25 = 0.42, mean 0.14
    spent("a1", "claude-code", "completed", (10_000, 2_000, 4_000), 0.05, "cli", turns=5),
    spent("a2", "claude-code", "max_turns", (50_000, 5_000, 30_000), 0.12, "cli", turns=20, duration=30),
    spent("a3", "claude-code", "completed", (90_000, 8_000, 60_000), 0.25, "cli", turns=7, duration=12.5),
    # codex: priced from tokens (1.575 and 0.35), a timeout, a model API error (no tokens, no cost)
    spent("b1", "codex", "completed", (1_000_000, 100_000, 600_000), 1.575, "price_table", turns=9),
    spent("b2", "codex", "timeout", (200_000, 10_000, 0), 0.35, "price_table"),
    api_error("b3", "codex"),
    # trae: one cost from the CLI, one priced: mixed
    spent("c1", "trae-sonnet45", "completed", (100, 10, 0), 0.3, "cli", turns=2),
    spent("c2", "trae-sonnet45", "budget", (100_000, 10_000, 80_000), 0.39, "price_table", turns=4),
    human("h1"),
    human("h2"),
]
EXPECTED = [
    {
        "agent": "claude-code",
        "attempts": 3,
        "models": ["claude-sonnet-4-5"],
        "cost_usd": 0.42,
        "mean_cost_usd": 0.14,
        "priced": 3,
        "cost_sources": {"cli": 3},
        "tokens": {"input": 150_000, "output": 15_000, "cached": 94_000},
        "with_tokens": 3,
        "turns": 32,
        "duration_s": 52.5,
        "stop_reasons": {"completed": 2, "max_turns": 1},
    },
    {
        "agent": "codex",
        "attempts": 3,
        "models": ["gpt-5"],
        "cost_usd": 1.925,
        "mean_cost_usd": 0.9625,
        "priced": 2,
        "cost_sources": {"price_table": 2},
        "tokens": {"input": 1_200_000, "output": 110_000, "cached": 600_000},
        "with_tokens": 2,
        "turns": 9,
        "duration_s": 20.0,
        "stop_reasons": {"completed": 1, "timeout": 1, "api_error": 1},
    },
    {
        "agent": "trae-sonnet45",
        "attempts": 2,
        "models": ["claude-sonnet-4-5"],
        "cost_usd": 0.69,
        "mean_cost_usd": 0.345,
        "priced": 2,
        "cost_sources": {"cli": 1, "price_table": 1},
        "tokens": {"input": 100_100, "output": 10_010, "cached": 80_000},
        "with_tokens": 2,
        "turns": 6,
        "duration_s": 20.0,
        "stop_reasons": {"completed": 1, "budget": 1},
    },
]


def collector(tmp_path: Path, outcomes: list[Outcome]) -> RunCollector:
    run = RunCollector("r", tmp_path, None)
    run.records = {f"{o.agent}::{o.task_id}": o.to_wire() for o in outcomes}
    return run


class Lines:
    """Collects what the terminal summary writes (the two TerminalReporter methods it uses)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(f"{sep * 3} {title} {sep * 3}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def terminal(run: RunCollector) -> list[str]:
    out = Lines()
    run.pytest_terminal_summary(out)  # type: ignore[arg-type]
    return out.lines


def test_totals_means_and_stop_reasons_per_agent(tmp_path: Path) -> None:
    rows = agent_costs([o.to_wire() for o in OUTCOMES])
    assert rows == EXPECTED
    report: dict[str, Any] = {}
    collector(tmp_path, OUTCOMES).pytest_json_modifyreport(report)
    assert report["isobench"]["agents"] == EXPECTED


def test_terminal_block(tmp_path: Path) -> None:
    lines = terminal(collector(tmp_path, OUTCOMES))
    start = lines.index(TITLE)
    header, claude, codex, trae = (line.split() for line in lines[start + 1 : start + 5])
    assert header == ["agent", "attempts", "cost", "$", "mean", "$", "cost", "from", "input", "tok", "output",
                      "tok", "cached", "tok", "turns", "ended"]  # fmt: skip
    assert claude == ["claude-code", "3", "0.4200", "0.1400", "CLI", "150000", "15000", "94000", "32",
                      "completed", "2,", "max_turns", "1"]  # fmt: skip
    assert codex == ["codex", "3", "1.9250", "0.9625", "prices", "1200000", "110000", "600000", "9",
                     "completed", "1,", "timeout", "1,", "api_error", "1"]  # fmt: skip
    assert trae[:9] == ["trae-sonnet45", "2", "0.6900", "0.3450", "mixed", "100100", "10010", "80000", "6"]
    notes = lines[start + 5 : start + 7]
    assert notes == [
        "  codex: 1 attempt(s) without a cost (a model API error, no tokens recorded, or a model missing"
        " from the price table: --isobench-prices); the mean is over the 2 with one",
        "  trae-sonnet45: costs of mixed origin: 1 from the CLI, 1 priced from tokens (--isobench-prices)",
    ]
    assert len(lines[start:]) == 8 and lines[-1].startswith("artifacts and outcomes.jsonl"), "no human row"


def test_task_rows_carry_what_the_attempt_spent(tmp_path: Path) -> None:
    row = _task_row(OUTCOMES[1].to_wire())
    assert row["agent_run"] == {"stop_reason": "max_turns", "turns": 20,
                                "tokens": {"input": 50_000, "output": 5_000, "cached": 30_000},
                                "cost_usd": 0.12, "cost_source": "cli"}  # fmt: skip
    assert _task_line(row).endswith(" [max_turns, 20 turns, $0.1200]")
    assert _task_row(human("h1").to_wire())["agent_run"] is None
    assert "[" not in _task_line(_task_row(human("h1").to_wire()))


def test_a_run_of_human_has_no_spending_block(tmp_path: Path) -> None:
    run = collector(tmp_path, [human("h1"), human("h2")])
    assert run.summary()["agents"] == []
    lines = terminal(run)
    assert lines and not any("agents' spending" in line for line in lines)


def test_no_cost_at_all_and_long_agent_names(tmp_path: Path) -> None:
    agent = "codex:some-very-long-model-name-nobody-has-priced-yet"
    outcomes = [spent("x", agent, "completed", (1_000, 100, 0), None, None)]
    (row,) = agent_costs([o.to_wire() for o in outcomes])
    assert (row["cost_usd"], row["mean_cost_usd"], row["priced"]) == (None, None, 0)
    lines = render_agent_costs([row])
    cells = lines[2].split()
    assert cells[0] != agent and cells[2:5] == ["n/a", "n/a", "n/a"]
    assert f"  {cells[0]} = {agent}" in lines  # the legend, as under the summary table
    assert any("tokens but no cost: gpt-5 is not in the price table" in line for line in lines)


# -- a whole run ------------------------------------------------------------------------------------

SPENDER = '''
import json
import sys

from pytest_isobench.agents.cli import Attempt, CliAgent, Launch, Tokens, jsonl_events

# task -> stop reason, turns, (input, output, cached) tokens, the CLI's own cost
USAGE = {
    "toy-one": ("completed", 4, (1_000_000, 100_000, 600_000), None),
    "toy-two": ("max_turns", 9, (200_000, 10_000, 0), 0.4322),
}


class Spender(CliAgent):
    """A CLI agent whose CLI prints what it spent and changes nothing."""

    family = "spender"
    default_model = "stub-model"
    install_hint = "defined in conftest.py"
    calls_model = False  # it calls no model: no gateway, its CLI's figures are the record

    def find_cli(self, given):
        return sys.executable

    def launch(self, ctx, home, cli):
        stop, turns, tokens, cost = USAGE[ctx.task.id]
        event = json.dumps({"stop": stop, "turns": turns, "tokens": tokens, "cost": cost})
        return Launch([cli, "-c", f"print({event!r})"])

    def parse(self, files):
        (event,) = jsonl_events(files.stdout)
        return Attempt(event["stop"], turns=event["turns"], tokens=Tokens(*event["tokens"]),
                       cost_usd=event["cost"])


def pytest_isobench_agents():
    return {"spender": lambda arg: Spender("spender", arg)}
'''
# toy-one: 400k x 2 + 600k x 0.5 + 100k x 10 per million = 2.1 (the price file's cached figure);
# toy-two: the CLI's 0.4322
RUN_EXPECTED = {
    "agent": "spender",
    "attempts": 2,
    "models": ["stub-model"],
    "cost_usd": 2.5322,
    "mean_cost_usd": 1.2661,
    "priced": 2,
    "cost_sources": {"cli": 1, "price_table": 1},
    "tokens": {"input": 1_200_000, "output": 110_000, "cached": 600_000},
    "with_tokens": 2,
    "turns": 13,
    "stop_reasons": {"completed": 1, "max_turns": 1},
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    for task_id in ("toy-one", "toy-two"):
        write_source_task(pytester.path / "tasks", task_id)
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    pytester.makeconftest(SPENDER)
    (pytester.path / "prices.toml").write_text('"stub-model" = [2.0, 10.0, 0.5]\n')
    return pytester


@pytest.mark.parametrize("option", ["--isobench-prices", "--isobench-judge-prices"])
def test_a_run_reports_spending_everywhere(suite: pytest.Pytester, option: str) -> None:
    result = suite.runpytest(
        "--isobench-agent=spender", f"{option}=prices.toml", *FAST, "-n", "2",
        "--json-report", "--json-report-file=r.json", "--junitxml=j.xml",
    )  # fmt: skip
    (row,) = json.loads((suite.path / "r.json").read_text())["isobench"]["agents"]
    assert {k: v for k, v in row.items() if k != "duration_s"} == RUN_EXPECTED
    result.stdout.fnmatch_lines(
        [
            TITLE,
            "agent * attempts * cost $ * mean $ * cost from * ended",
            "spender * 2 * 2.5322 * 1.2661 * mixed * 1200000 * 110000 * 600000 * 13 * completed 1,"
            " max_turns 1",
            "  spender: costs of mixed origin: 1 from the CLI, 1 priced from tokens (--isobench-prices)",
        ]
    )
    result.stdout.fnmatch_lines(["toy-one *[[]completed, 4 turns, $2.1000[]]"])
    junit = ElementTree.parse(suite.path / "j.xml").getroot()
    runs = {
        outcome["task_id"]: outcome["agent_run"]
        for prop in junit.iter("property")
        if prop.get("name") == "isobench" and (outcome := json.loads(prop.get("value") or ""))
    }
    assert (runs["toy-one"]["cost_usd"], runs["toy-one"]["cost_source"]) == (2.1, "price_table")
    assert (runs["toy-two"]["cost_usd"], runs["toy-two"]["cost_source"]) == (0.4322, "cli")
    (run_dir,) = (suite.path / ".isobench" / "runs").iterdir()
    summary = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "summarize", str(run_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    block = summary.stdout.splitlines()[summary.stdout.splitlines().index(TITLE) :]
    assert block[2].split()[:9] == ["spender", "2", "2.5322", "1.2661", "mixed", "1200000", "110000",
                                    "600000", "13"]  # fmt: skip


def test_a_run_of_human_prints_no_spending(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-k", "toy-one", "--json-report",
                             "--json-report-file=r.json")  # fmt: skip
    result.stdout.fnmatch_lines(["*isobench: run *"])
    assert not any("agents' spending" in line for line in result.outlines)
    assert json.loads((suite.path / "r.json").read_text())["isobench"]["agents"] == []


# -- the option --------------------------------------------------------------------------------------


def test_price_option_errors_name_the_option(pytester: pytest.Pytester) -> None:
    (pytester.path / "a.toml").write_text('"m" = [1, 2]\n')
    (pytester.path / "b.toml").write_text('"m" = [1, 2, 3, 4]\n')
    result = pytester.runpytest("--collect-only", "--isobench-prices=b.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-prices: *b.toml: 'm': expected [[]input, output[]] or*"])
    result = pytester.runpytest(
        "--collect-only", "--isobench-prices=a.toml", "--isobench-judge-prices=b.toml"
    )
    result.stderr.fnmatch_lines(
        ["*--isobench-prices and --isobench-judge-prices name different price files: give one*"]
    )
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--isobench-prices=*", "*--isobench-judge-prices=*"])
    assert "old name of --isobench-prices, still accepted" in " ".join(result.stdout.str().split())
