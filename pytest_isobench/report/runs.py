"""Several runs read together: one column per (run, agent), the comparison of two runs.

A source is a run directory or an ``outcomes.jsonl`` file. An agent found in more than one source gets
the run's id after its name (``human@20260101-120000-ab12``), so its runs stay apart in every table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results import read_outcomes
from ..scoring import Group


@dataclass(frozen=True)
class Source:
    """One run's records, as read from a run directory or an outcomes file."""

    path: Path  # the run directory (the outcomes file's folder)
    label: str  # the run id (the folder's name)
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Column:
    """One agent of one run: a column of the report's grid."""

    label: str  # the agent, or ``agent@run`` when that agent is in several runs
    agent: str
    source: Source
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> record


def load_sources(paths: Sequence[Path], skipped: list[str] | None = None) -> list[Source]:
    """Read each path (run directory or outcomes file); ``OutcomesFileError`` names a bad one."""
    sources = []
    for path in paths:
        records = read_outcomes(path, skipped)
        folder = path if path.is_dir() else path.parent
        label = folder.resolve().name or str(folder)
        sources.append(Source(folder, label, records))
    return sources


def columns(sources: Sequence[Source]) -> list[Column]:
    """One column per (source, agent) in the order given; an agent in several sources gets ``@run``."""
    seen: dict[str, int] = {}
    for source in sources:
        for agent in {str(r["agent"]) for r in source.records}:
            seen[agent] = seen.get(agent, 0) + 1
    labels: set[str] = set()
    found = []
    for index, source in enumerate(sources):
        for agent in sorted({str(r["agent"]) for r in source.records}):
            label = agent if seen[agent] == 1 else f"{agent}@{source.label}"
            if label in labels:  # the same run given twice
                label = f"{label}#{index + 1}"
            labels.add(label)
            records = {str(r["task_id"]): r for r in source.records if str(r["agent"]) == agent}
            found.append(Column(label, agent, source, records))
    return found


def labelled_records(cols: Iterable[Column]) -> list[dict[str, Any]]:
    """Every record, its ``agent`` replaced by its column's label (for ``summarize``'s tables)."""
    return [{**record, "agent": col.label} for col in cols for record in col.records.values()]


def overall(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The paper's rates over all the records given (every repo together)."""
    group = Group("all", "all")
    for record in records:
        group.add(record)
    return group.as_dict()


def compare(a: Sequence[Column], b: Sequence[Column]) -> dict[str, Any]:
    """What changed from run A to run B: per task, verdict and quadrant; overall, hard % and true %.

    Each run is one agent here (the usual case: ``compare RUN_A RUN_B``); a run holding several agents
    is compared agent by agent where both runs have it. A task in one run only is ``missing`` in the
    other.
    """
    pairs: list[tuple[Column, Column]]
    if len(a) == 1 and len(b) == 1:
        pairs = [(a[0], b[0])]
    else:
        by_agent = {col.agent: col for col in b}
        pairs = [(col, by_agent[col.agent]) for col in a if col.agent in by_agent]
        if not pairs:
            raise ValueError(
                "the runs share no agent and hold several each: give runs of one agent each, or runs"
                " of the same agents"
            )
    changes = []
    rates = []
    for col_a, col_b in pairs:
        for task_id in sorted(set(col_a.records) | set(col_b.records)):
            before, after = _state(col_a.records.get(task_id)), _state(col_b.records.get(task_id))
            if before != after:
                changes.append(
                    {
                        "task_id": task_id,
                        "agent_a": col_a.agent,
                        "agent_b": col_b.agent,
                        "a": before,
                        "b": after,
                    }
                )
        rate_a, rate_b = overall(col_a.records.values()), overall(col_b.records.values())
        rates.append(
            {
                "agent_a": col_a.agent,
                "agent_b": col_b.agent,
                "n_a": rate_a["n"],
                "n_b": rate_b["n"],
                **{
                    f"{key}_{side}": rate[key]
                    for key in ("hard_success_pct", "true_success_pct")
                    for side, rate in (("a", rate_a), ("b", rate_b))
                },
                "hard_success_change": _change(rate_a["hard_success_pct"], rate_b["hard_success_pct"]),
                "true_success_change": _change(rate_a["true_success_pct"], rate_b["true_success_pct"]),
            }
        )
    return {"changes": changes, "rates": rates}


def _state(record: Mapping[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"hard": "missing", "quadrant": "missing", "status": "missing"}
    hard = "error" if record.get("status") == "error" else record.get("hard") or "-"
    return {"hard": hard, "quadrant": record.get("quadrant") or "unscored", "status": record.get("status")}


def _change(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 1)


def render_compare(result: Mapping[str, Any], label_a: str, label_b: str) -> list[str]:
    """``compare``'s text: the tasks that changed, then the rates of A and B and the change."""
    lines = [f"A = {label_a}", f"B = {label_b}"]
    changes = result["changes"]
    if changes:
        width = max(len(c["task_id"]) for c in changes)
        lines.append(f"{len(changes)} task(s) with a different verdict or quadrant:")
        for c in changes:
            lines.append(
                f"  {c['task_id']:<{width}}  {c['a']['hard']}/{c['a']['quadrant']} -> "
                f"{c['b']['hard']}/{c['b']['quadrant']}"
            )
    else:
        lines.append("no task changed its verdict or quadrant")
    for rate in result["rates"]:
        name = (
            rate["agent_a"]
            if rate["agent_a"] == rate["agent_b"]
            else f"{rate['agent_a']} -> {rate['agent_b']}"
        )
        for key, title in (("hard_success", "hard %"), ("true_success", "true %")):
            a, b, change = rate[f"{key}_pct_a"], rate[f"{key}_pct_b"], rate[f"{key}_change"]
            lines.append(
                f"{name}: {title} {_num(a)} (n={rate['n_a']}) -> {_num(b)} (n={rate['n_b']})"
                f"  change {'n/a' if change is None else f'{change:+.1f}'}"
            )
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
