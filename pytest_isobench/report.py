"""Controller-side collector: outcomes from reports → terminal summary and the JSON report section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from .gate import inconclusive_text
from .keys import WIRE_KEY
from .results import Outcome, append_outcome
from .scoring import LEGEND, gain_not_measurable, render_table, summarize


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
    from .judge import agreement

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
    return row


def _task_line(row: dict[str, Any]) -> str:
    if row.get("status") == "error":
        return f"{row['task_id']:<20} error     {row.get('error') or ''}"
    pct = "" if row.get("hard_pct") is None else f"{row['hard_pct']:+.1f}%"
    extra = f" ({row['hard_reason']})" if row.get("hard_reason") else ""
    flags = inconclusive_text(row.get("hard_detail") or {"inconclusive": row.get("inconclusive")})
    if row.get("touches_benchmark"):
        flags += f" touches benchmark: {', '.join(row['touches_benchmark'])}"
    return (
        f"{row['task_id']:<20} {row.get('hard') or '-':<8} {pct:>8} {row.get('hard_metric') or '':<22}"
        f" {row.get('quadrant')}{extra}{flags}"
    )
