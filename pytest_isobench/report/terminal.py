"""Controller-side collector: outcomes from reports → terminal summary and the JSON report section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ..gate import inconclusive_text
from ..keys import WIRE_KEY
from ..results import Outcome, append_outcome
from ..scoring import (
    LEGEND,
    agent_legend,
    aligned_lines,
    gain_not_measurable,
    render_table,
    shown_agent,
    summarize,
)


class JsonDict(dict[str, Any]):
    """A dict whose ``str()`` is JSON (junitxml writes a user property as ``str(value)``)."""

    def __str__(self) -> str:
        return json.dumps(self, sort_keys=True)


class RunCollector:
    """Accumulates outcomes as reports arrive (replayed from workers under xdist); summary() is pure."""

    def __init__(
        self,
        run_id: str,
        run_dir: Path,
        agent: str | None,
        hints: str = "none",
        tasks: Mapping[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.agent = agent
        self.hints = hints
        self.tasks = dict(tasks or {})  # task id -> repo: names the items a crashed worker ran
        self.records: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each task item's outcome, and why a task did not produce one.

        Runs before junitxml, which writes ``str(value)`` of each user property: the outcome becomes a
        ``JsonDict`` there, so the JUnit property is JSON. Only here, on the controller: a dict subclass
        could not cross pytest-xdist, and for everything else it still is the same dict.
        """
        if str(report.when) == "???" and report.failed:  # pytest-xdist: the worker running it crashed
            self._worker_crashed(report)
            return
        if "isobench" not in report.keywords:
            return
        report.user_properties = [
            (k, JsonDict(v) if k == WIRE_KEY and isinstance(v, dict) else v)
            for k, v in report.user_properties
        ]
        outcome = next((v for k, v in report.user_properties if k == WIRE_KEY and isinstance(v, dict)), None)
        if outcome is not None:
            self.records[report.nodeid] = outcome
        if report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skipped[report.nodeid] = reason.removeprefix("Skipped: ")
        elif report.failed and report.when == "setup" and outcome is None:
            self.errors[report.nodeid] = _first_line(report.longreprtext)

    def _worker_crashed(self, report: pytest.TestReport) -> None:
        """A crashed worker's item has no outcome: it becomes an error row and stays in the table."""
        task_id = crashed_task(report.nodeid, self.tasks)
        if task_id is None or report.nodeid in self.records:
            return
        outcome = Outcome(
            task_id=task_id,
            repo=self.tasks[task_id],
            agent=self.agent or "",
            run_id=self.run_id,
            status="error",
            error=_first_line(report.longreprtext),
        )
        append_outcome(self.run_dir, outcome)  # `summarize` counts it too
        self.records[report.nodeid] = outcome.to_wire()

    def summary(self) -> dict[str, Any]:
        """The run's summary; the same data for the terminal and the JSON report."""
        records = list(self.records.values())
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "hints": self.hints,
            "groups": summarize(records),
            "tasks": [_task_row(r) for r in sorted(records, key=lambda r: (r["repo"], r["task_id"]))],
            "skipped": len(self.skipped),
            "unrecorded_errors": sorted(self.errors.values()),
            "touches_benchmark": sorted(r["task_id"] for r in records if r.get("touches_benchmark")),
            "judges": judge_summary(records),
            "agents": agent_costs(records),
            "human_gain_not_measurable": gain_not_measurable(records),
        }

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        """Put the summary under a top-level ``isobench`` key of pytest-json-report's file."""
        json_report["isobench"] = self.summary()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Per-task verdicts, then the paper's table per repo and agent."""
        if not (self.records or self.skipped or self.errors):
            return
        summary = self.summary()
        terminalreporter.write_sep("=", f"isobench: run {self.run_id} (hints: {self.hints})")
        for row in summary["tasks"]:
            terminalreporter.write_line(_task_line(row))
        if summary["groups"]:
            terminalreporter.write_line("")
            for line in render_table(summary["groups"]):
                terminalreporter.write_line(line)
            terminalreporter.write_line(LEGEND)
        if summary["agents"]:
            terminalreporter.write_line("")
            for line in render_agent_costs(summary["agents"]):
                terminalreporter.write_line(line)
        if summary["judges"] is not None:
            terminalreporter.write_line(_judge_line(summary["judges"]))
        if summary["touches_benchmark"]:
            terminalreporter.write_line(
                f"{len(summary['touches_benchmark'])} patch(es) changed benchmark files (measured with the"
                f" reference tree's instead): {', '.join(summary['touches_benchmark'])}"
            )
        if summary["human_gain_not_measurable"]:
            terminalreporter.write_line(
                "human gain not measurable here (human vs baseline inside the noise): "
                + ", ".join(summary["human_gain_not_measurable"])
            )
        if self.skipped:
            reasons = sorted(set(self.skipped.values()))
            terminalreporter.write_line(f"{len(self.skipped)} task(s) skipped, e.g.: {reasons[0]}")
        for error in summary["unrecorded_errors"]:
            terminalreporter.write_line(f"error: {error}")
        if self.records:
            terminalreporter.write_line(f"artifacts and outcomes.jsonl: {self.run_dir}")


def crashed_task(nodeid: str, tasks: Mapping[str, str]) -> str | None:
    """The task of a test id such as ``tasks/test_isobench.py::test_task[vllm-ad8d696a]``, if any."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.index("[") + 1 : -1]
    if params in tasks:
        return params
    # Stacked parametrisations join their ids with "-": the task's id is one of the parts.
    padded = f"-{params}-"
    return next((t for t in sorted(tasks, key=len, reverse=True) if f"-{t}-" in padded), None)


def judge_summary(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Judges over the run: agreement on right target (when several judged), unscored count, cost."""
    judged = [r["soft"] for r in records if r.get("soft")]
    if not judged:
        return None
    from ..judge import agreement

    specs = judged[0].get("specs", [])
    same = [soft for soft in judged if soft.get("specs") == specs]
    return {
        "specs": specs,
        "tasks": len(judged),
        "unscored": sum(1 for soft in judged if soft.get("right_target") is None),
        "errors": sorted({soft["error"] for soft in judged if soft.get("error")}),
        "agreement": agreement([soft.get("votes", []) for soft in same]) if len(specs) > 1 else None,
        "cost_usd": round(sum(float(soft.get("cost_usd") or 0.0) for soft in judged), 6),
        "input_tokens": sum(int(soft.get("input_tokens") or 0) for soft in judged),
        "output_tokens": sum(int(soft.get("output_tokens") or 0) for soft in judged),
    }


# The fields a CLI agent's attempt records in the outcome's ``agent_run`` (``Attempt.info``).
SPEND_FIELDS = ("stop_reason", "turns", "tokens", "cost_usd", "cost_source")
EXITED = "exited"  # an attempt without a stop reason: the agent's process ended by itself


def _attempt(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What the agent did in this outcome, or None when it did not run (an error before it started).

    A model API failure errors the task without an ``agent_run``; it counts as an attempt that ended
    with ``api_error`` (its tokens and cost are not known).
    """
    from ..agents.cli import ModelApiError

    run = record.get("agent_run") or {}
    if run:
        return dict(run)
    error = str(record.get("error") or "")
    if record.get("status") == "error" and error.startswith(f"{ModelApiError.__name__}:"):
        return {"stop_reason": "api_error"}
    return None


def agent_costs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per agent (sorted): attempts, cost in USD (total, and mean over the attempts with a cost), where
    the costs came from, tokens, turns, agent time and how the attempts ended.

    Only agents whose attempts record some of ``SPEND_FIELDS`` (CLI agents; a command agent the harness
    stopped) are listed: human, noop and replay spend nothing the harness could count.
    """
    from ..agents.cli import STOP_REASONS

    runs: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        run = _attempt(record)
        if run is not None:
            runs.setdefault(str(record.get("agent") or "?"), []).append(run)
    rows = []
    for agent, attempts in sorted(runs.items()):
        if not any(key in run for run in attempts for key in SPEND_FIELDS):
            continue
        costs = [float(run["cost_usd"]) for run in attempts if run.get("cost_usd") is not None]
        sources: dict[str, int] = {}
        for run in attempts:
            if run.get("cost_usd") is not None:
                source = str(run.get("cost_source") or "unknown")
                sources[source] = sources.get(source, 0) + 1
        counted = [run["tokens"] for run in attempts if isinstance(run.get("tokens"), dict)]
        turns = [int(run["turns"]) for run in attempts if run.get("turns") is not None]
        ended: dict[str, int] = {}
        for run in attempts:
            reason = str(run.get("stop_reason") or EXITED)
            ended[reason] = ended.get(reason, 0) + 1
        order = {reason: i for i, reason in enumerate((*STOP_REASONS, EXITED))}
        rows.append(
            {
                "agent": agent,
                "attempts": len(attempts),
                "models": sorted({str(run["model"]) for run in attempts if run.get("model")}),
                "cost_usd": round(sum(costs), 6) if costs else None,
                "mean_cost_usd": round(sum(costs) / len(costs), 6) if costs else None,
                "priced": len(costs),
                "cost_sources": dict(sorted(sources.items())),
                "tokens": {
                    kind: sum(int(tokens.get(kind) or 0) for tokens in counted)
                    for kind in ("input", "output", "cached")
                }
                if counted
                else None,
                "with_tokens": len(counted),
                "turns": sum(turns) if turns else None,
                "duration_s": round(sum(float(run.get("duration_s") or 0.0) for run in attempts), 3),
                "stop_reasons": dict(sorted(ended.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
            }
        )
    return rows


SPEND_COLUMNS = (
    ("agent", "agent", "<"),
    ("attempts", "attempts", ">"),
    ("cost_usd", "cost $", ">"),
    ("mean_cost_usd", "mean $", ">"),
    ("source", "cost from", "<"),
    ("input", "input tok", ">"),
    ("output", "output tok", ">"),
    ("cached", "cached tok", ">"),
    ("turns", "turns", ">"),
    ("ended", "ended", "<"),
)
SOURCE_NAMES = {"cli": "CLI", "price_table": "prices", "gateway": "gateway"}


def render_agent_costs(rows: list[dict[str, Any]]) -> list[str]:
    """The agents' spending as aligned lines under a title, then notes: mixed cost sources, attempts
    without a cost, the full names of agents shown under a short one (as in the summary table)."""
    cells: list[list[str]] = []
    notes = []
    for row in rows:
        tokens = row["tokens"] or {}
        sources = row["cost_sources"]
        values = {
            "agent": shown_agent(row["agent"]),
            "attempts": str(row["attempts"]),
            "cost_usd": _usd(row["cost_usd"]),
            "mean_cost_usd": _usd(row["mean_cost_usd"]),
            "source": "mixed" if len(sources) > 1 else SOURCE_NAMES.get(next(iter(sources), ""), "n/a"),
            **{
                kind: str(tokens[kind]) if kind in tokens else "n/a" for kind in ("input", "output", "cached")
            },
            "turns": "n/a" if row["turns"] is None else str(row["turns"]),
            "ended": ", ".join(f"{reason} {count}" for reason, count in row["stop_reasons"].items()),
        }
        cells.append([values[key] for key, _, _ in SPEND_COLUMNS])
        name = values["agent"]
        if len(sources) > 1:
            parts = [f"{count} {_source_text(source)}" for source, count in sources.items()]
            notes.append(f"  {name}: costs of mixed origin: {', '.join(parts)}")
        if row["priced"] == 0 and row["with_tokens"]:
            notes.append(
                f"  {name}: tokens but no cost: {', '.join(row['models']) or 'the model'} is not in the"
                " price table (--isobench-prices)"
            )
        elif 0 < row["priced"] < row["attempts"]:
            notes.append(
                f"  {name}: {row['attempts'] - row['priced']} attempt(s) without a cost (a model API error,"
                " no tokens recorded, or a model missing from the price table: --isobench-prices); the"
                f" mean is over the {row['priced']} with one"
            )
    title = "agents' spending (latest attempt per task; USD; input tokens include the cached)"
    legend = agent_legend(str(row["agent"]) for row in rows)
    return [title, *aligned_lines(SPEND_COLUMNS, cells), *notes, *legend]


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _source_text(source: str) -> str:
    texts = {
        "cli": "from the CLI",
        "price_table": "priced from tokens (--isobench-prices)",
        "gateway": "counted by the model gateway (--isobench-prices)",
    }
    return texts.get(source, f"from {source}")


def _judge_line(judges: dict[str, Any]) -> str:
    parts = [f"judges {', '.join(judges['specs'])} on {judges['tasks']} task(s)"]
    agree = judges.get("agreement")
    if agree and agree.get("percent_agreement") is not None:
        kappa = agree.get("cohen_kappa")
        parts.append(
            f"agreement on right target {agree['percent_agreement']:.1f} %"
            + (f" (Cohen's kappa {kappa:.2f})" if kappa is not None else "")
        )
    if judges["unscored"]:
        parts.append(f"{judges['unscored']} unscored ({'; '.join(judges['errors'])[:200]})")
    parts.append(
        f"cost ${judges['cost_usd']:.4f}, tokens {judges['input_tokens']} in / {judges['output_tokens']} out"
    )
    return "; ".join(parts)


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _task_row(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "task_id",
        "repo",
        "agent",
        "status",
        "hard",
        "hard_pct",
        "hard_metric",
        "hard_reason",
        "inconclusive",
        "bottleneck",
        "approach",
        "quadrant",
        "correctness",
        "timed_out",
        "touches_benchmark",
        "error",
    )
    row = {key: record.get(key) for key in keys}
    detail = record.get("hard_detail") or {}
    noise_keys = ("inconclusive", "rounds", "ci_pct", "ci_note", "human_gain_measurable")
    row["hard_detail"] = {key: detail.get(key) for key in noise_keys}
    run = record.get("agent_run") or {}
    row["agent_run"] = (
        {key: run.get(key) for key in SPEND_FIELDS} if any(k in run for k in SPEND_FIELDS) else None
    )
    return row


def _task_line(row: dict[str, Any]) -> str:
    if row.get("status") == "error":
        return f"{row['task_id']:<20} error     {row.get('error') or ''}"
    pct = "" if row.get("hard_pct") is None else f"{row['hard_pct']:+.1f}%"
    extra = f" ({row['hard_reason']})" if row.get("hard_reason") else ""
    flags = inconclusive_text(row.get("hard_detail") or {"inconclusive": row.get("inconclusive")})
    if row.get("correctness") == "fail":
        flags += " incorrect"
    if row.get("touches_benchmark"):
        flags += f" touches benchmark: {', '.join(row['touches_benchmark'])}"
    if run := row.get("agent_run"):
        spent = [str(run.get("stop_reason") or EXITED)]
        spent += [f"{run['turns']} turns"] if run.get("turns") is not None else []
        spent += [f"${run['cost_usd']:.4f}"] if run.get("cost_usd") is not None else []
        flags += f" [{', '.join(spent)}]"
    return (
        f"{row['task_id']:<20} {row.get('hard') or '-':<8} {pct:>8} {row.get('hard_metric') or '':<22}"
        f" {row.get('quadrant')}{extra}{flags}"
    )
