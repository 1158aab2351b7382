"""Pure scoring: verdicts → quadrant, outcome records → the paper's summary table."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HARD_PASS = frozenset({"beats", "similar"})
RIGHT_TARGET = frozenset({"same_target", "related_target"})
HARD_VERDICTS = ("beats", "similar", "worse", "failed")
QUADRANTS = ("Q1", "Q2", "Q3", "Q4", "unscored")
QUADRANT_NAMES = {
    "Q1": "true success",
    "Q2": "good intent, bad execution",
    "Q3": "lucky win",
    "Q4": "failure",
    "unscored": "no soft verdict",
}


def is_hard_pass(hard: str | None) -> bool:
    """The paper's hard gate: beats or similar to the human change."""
    return hard in HARD_PASS


def quadrant(hard: str | None, bottleneck: str | None) -> str:
    """Q1 right target + hard pass, Q2 right target only, Q3 hard pass only, Q4 neither.

    Without a soft verdict the task is ``unscored``: never silently Q3 or Q4.
    """
    if bottleneck is None:
        return "unscored"
    right = bottleneck in RIGHT_TARGET
    passed = is_hard_pass(hard)
    if right:
        return "Q1" if passed else "Q2"
    return "Q3" if passed else "Q4"


def _pct(count: int, total: int) -> float:
    return round(100.0 * count / total, 1) if total else 0.0


def agent_slug(spec: str) -> str:
    """A short name for an agent spec, also its artifacts folder (``command:...`` and ``replay:...``
    get a short hash of the whole spec)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.split(":", 1)[0]).strip("-") or "agent"
    if ":" in spec:
        name += "-" + hashlib.sha256(spec.encode()).hexdigest()[:8]
    return name


@dataclass
class Group:
    """Counts for one (repo, agent); every selected task is in ``n``."""

    repo: str
    agent: str
    n: int = 0
    hard: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HARD_VERDICTS, 0))
    quadrants: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUADRANTS, 0))
    errors: int = 0
    inconclusive: int = 0
    hard_pass_incorrect: int = 0  # passed the hard gate, failed a correctness check

    def add(self, record: Mapping[str, Any]) -> None:
        self.n += 1
        self.inconclusive += bool(record.get("inconclusive"))
        self.hard_pass_incorrect += is_hard_pass(record.get("hard")) and record.get("correctness") == "fail"
        if record.get("status") == "error":
            self.errors += 1
        hard = record.get("hard")
        if hard in self.hard:
            self.hard[hard] += 1
        recorded = record.get("quadrant")
        q = recorded if recorded in QUADRANTS else quadrant(hard, record.get("bottleneck"))
        self.quadrants[q] += 1

    def as_dict(self) -> dict[str, Any]:
        """The ``summarize --format json`` row: counts, then percentages of n rounded to one decimal.

        ``error`` counts infrastructure errors (in ``n``, never in a verdict). The soft rates (true,
        gap, right target) are None when no task of the group has a soft verdict (no judge ran).
        """
        q = self.quadrants
        judged = q["unscored"] < self.n
        return {
            "repo": self.repo,
            "agent": self.agent,
            "n": self.n,
            **self.hard,
            "error": self.errors,
            "q1": q["Q1"],
            "q2": q["Q2"],
            "q3": q["Q3"],
            "q4": q["Q4"],
            "unscored": q["unscored"],
            "hard_success_pct": _pct(self.hard["beats"] + self.hard["similar"], self.n),
            "true_success_pct": _pct(q["Q1"], self.n) if judged else None,
            "gap_pct": _pct(q["Q3"], self.n) if judged else None,
            "right_target_pct": _pct(q["Q1"] + q["Q2"], self.n) if judged else None,
            "hard_pass_incorrect": self.hard_pass_incorrect,
            "inconclusive": self.inconclusive,
        }


def summarize(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group outcome records by (repo, agent), sorted; each record counts once."""
    groups: dict[tuple[str, str], Group] = {}
    for record in records:
        key = (str(record.get("repo") or "?"), str(record.get("agent") or "?"))
        groups.setdefault(key, Group(*key)).add(record)
    return [groups[key].as_dict() for key in sorted(groups)]


def gain_not_measurable(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Tasks whose human change is not measurably better than baseline here (interval includes 0)."""
    found = set()
    for record in records:
        detail = record.get("hard_detail") or {}
        if detail.get("human_gain_measurable") is False:
            found.add(str(record.get("task_id")))
    return sorted(found)


TABLE_COLUMNS = (
    ("repo", "repo", "<"),
    ("agent", "agent", "<"),
    ("n", "tasks", ">"),
    ("beats", "beats", ">"),
    ("similar", "similar", ">"),
    ("worse", "worse", ">"),
    ("failed", "failed", ">"),
    ("error", "error", ">"),
    ("q1", "Q1", ">"),
    ("q2", "Q2", ">"),
    ("q3", "Q3", ">"),
    ("q4", "Q4", ">"),
    ("unscored", "unscored", ">"),
    ("hard_success_pct", "hard%", ">"),
    ("true_success_pct", "true%", ">"),
    ("gap_pct", "gap%", ">"),
    ("right_target_pct", "target%", ">"),
    ("hard_pass_incorrect", "incorrect", ">"),
    ("inconclusive", "inconcl.", ">"),
)


def render_table(groups: list[dict[str, Any]]) -> list[str]:
    """The summary as aligned text lines (one header, one row per group), then a legend line per
    agent shown under a short name (``n/a``: no judge gave a soft verdict for that group)."""
    rows = [[_cell(group.get(key), key) for key, _, _ in TABLE_COLUMNS] for group in groups]
    return aligned_lines(TABLE_COLUMNS, rows) + agent_legend(str(g["agent"]) for g in groups)


def aligned_lines(columns: Sequence[tuple[str, str, str]], rows: list[list[str]]) -> list[str]:
    """The columns' titles, then ``rows`` (cell texts in column order), each column as wide as its
    widest cell and aligned left (``<``) or right (``>``), two spaces apart, no trailing blanks."""
    cells = [[title for _, title, _ in columns], *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return [
        "  ".join(
            value.ljust(width) if align == "<" else value.rjust(width)
            for value, width, (_, _, align) in zip(row, widths, columns, strict=True)
        ).rstrip()
        for row in cells
    ]


AGENT_WIDTH = 32


def shown_agent(spec: str) -> str:
    """An agent as a table shows it: a spec longer than ``AGENT_WIDTH`` (e.g.
    ``replay:/a/long/path/preds.jsonl``) under its artifacts folder's name."""
    return agent_slug(spec) if len(spec) > AGENT_WIDTH else spec


def agent_legend(specs: Iterable[str]) -> list[str]:
    """The lines under a table that give the full spec of each agent it shows under a short name."""
    return [f"  {agent_slug(spec)} = {spec}" for spec in sorted({s for s in specs if len(s) > AGENT_WIDTH})]


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}"
    return shown_agent(str(value)) if key == "agent" else str(value)


LEGEND = (
    "Q1 true success (right target, hard pass) · Q2 good intent, bad execution · Q3 lucky win · Q4 failure;"
    " rates divide by every task in the group, failures and errors included;"
    " incorrect: hard pass but incorrect (a correctness check failed)"
)
