"""The HTML report: one self-contained page for one or more runs, every agent side by side.

``build_context`` turns runs (and, where given, the task catalog) into plain data; ``render`` fills
the jinja2 template. The page loads nothing: styles, the sort/filter script and the SVG charts are
inline, so it opens from a file or a CI artifact without a network.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..gate import inconclusive_text
from ..scoring import LEGEND, QUADRANT_NAMES, TABLE_COLUMNS, agent_slug, summarize
from ..secrets import redact
from ..tasks import LoadedTask, load_catalog
from .runs import Column, Source, columns, labelled_records
from .svg import Bar, bar_chart, dot_plot
from .terminal import EXITED, agent_costs

MAX_PATCH_CHARS = 200_000  # a larger patch is cut, with a note and the link to the whole file
HUMAN_AGENT = "human"
PAGE_TITLES = {
    "hard_success_pct": "hard %",
    "true_success_pct": "true %",
    "gap_pct": "gap %",
    "right_target_pct": "right target %",
}


@dataclass(frozen=True)
class TaskInfo:
    """What the catalog says about a task (a report without the catalog knows only ids and repos)."""

    id: str
    repo: str
    title: str = ""
    pr_url: str | None = None
    description: str = ""
    mode: str = ""
    marks: tuple[str, ...] = ()
    metric: str | None = None
    human_patch: str | None = None
    commits: tuple[str, str] | None = None  # (base, human): the human patch from a cached repository


@dataclass
class Page:
    """Everything the template shows."""

    title: str
    generated: str
    sources: list[dict[str, Any]]
    columns: list[str]
    groups: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    filters: dict[str, list[str]] = field(default_factory=dict)
    legend: str = LEGEND
    quadrant_names: dict[str, str] = field(default_factory=lambda: dict(QUADRANT_NAMES))
    # the terminal table's columns (a column added there shows here too), some with longer titles
    table_columns: tuple[tuple[str, str, str], ...] = tuple(
        (key, PAGE_TITLES.get(key, title), align) for key, title, align in TABLE_COLUMNS
    )


def catalog_info(roots: Sequence[Path]) -> dict[str, TaskInfo]:
    """Task id -> what the catalog says, from the task roots that exist (broken files are left out)."""
    found: dict[str, TaskInfo] = {}
    for entry in load_catalog([r for r in roots if r.exists()]):
        if isinstance(entry, LoadedTask):
            found[entry.id] = task_info(entry)
    return found


def task_info(entry: LoadedTask) -> TaskInfo:
    task = entry.task
    human = None
    if task.source is not None:  # a source task ships its human change as a file
        patch = entry.path.parent / task.source.patch
        if patch.is_file():
            human = patch.read_text(encoding="utf-8", errors="replace")
    return TaskInfo(
        id=task.id,
        repo=task.repo,
        title=task.title,
        pr_url=task.pr_url,
        description=task.description,
        mode=task.benchmark.mode,
        marks=tuple(task.marks),
        metric=task.benchmark.metric,
        human_patch=human,
        commits=(task.base_commit, task.human_commit),
    )


def _git(git_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=120,
    )


def human_patch_from_cache(commits: tuple[str, str], cache_dir: Path | None) -> str | None:
    """The human change (base..human) from a task repository the harness already cloned, if any.

    Looks only at what is on disk (``<cache-dir>/repos``): nothing is fetched for a report.
    """
    if cache_dir is None or not (cache_dir / "repos").is_dir():
        return None
    base, human = commits
    for git_dir in sorted(p for p in (cache_dir / "repos").iterdir() if p.is_dir()):
        if any(_git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode for commit in commits):
            continue
        diff = _git(git_dir, "diff", "--no-renames", "--no-color", base, human)
        if diff.returncode == 0:
            return diff.stdout
    return None


def build_context(
    sources: Sequence[Source],
    catalog: Mapping[str, TaskInfo] | None = None,
    output: Path | None = None,
    title: str = "ISO-Bench report",
    cache_dir: Path | None = None,
) -> Page:
    """The page's data: summary tables (the same as ``summarize`` over these runs) and every task."""
    catalog = dict(catalog or {})
    cols = columns(sources)
    records = labelled_records(cols)
    task_ids = sorted({task_id for col in cols for task_id in col.records})
    repo_of = {tid: str(col.records[tid]["repo"]) for col in cols for tid in col.records}
    tasks = []
    for task_id in sorted(task_ids, key=lambda t: (repo_of[t], t)):
        info = catalog.get(task_id) or TaskInfo(task_id, repo_of[task_id])
        tasks.append(_task(info, cols, output, cache_dir))
    filters = {
        "repo": sorted({t["repo"] for t in tasks}),
        "mode": sorted({t["mode"] for t in tasks if t["mode"]}),
        "marker": sorted({m for t in tasks for m in t["marks"]}),
        "verdict": [
            v
            for v in ("beats", "similar", "worse", "failed", "error", "missing")
            if any(v in t["verdicts"] for t in tasks)
        ],
    }
    return Page(
        title=title,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sources=[{"label": s.label, "tasks": len(s.records)} for s in sources],
        columns=[col.label for col in cols],
        groups=summarize(records),
        agents=agent_costs(records),
        tasks=tasks,
        filters=filters,
    )


def _task(
    info: TaskInfo, cols: Sequence[Column], output: Path | None, cache_dir: Path | None = None
) -> dict[str, Any]:
    cells = [_cell(col, col.records.get(info.id), info, output) for col in cols]
    human_patch = info.human_patch
    if human_patch is None:  # a run of the human agent recorded the human change as its patch
        human_patch = next((c["patch"] for c in cells if c["agent"] == HUMAN_AGENT and c["patch"]), None)
    if human_patch is None and info.commits is not None:
        human_patch = human_patch_from_cache(info.commits, cache_dir)
    charts = _charts(info, cells)
    return {
        "id": info.id,
        "anchor": "task-" + agent_slug(info.id),
        "repo": info.repo,
        "title": info.title,
        "pr_url": info.pr_url,
        "description": info.description,
        "mode": info.mode,
        "marks": list(info.marks),
        "cells": cells,
        "verdicts": sorted({c["verdict"] for c in cells}),
        "human_patch": _diff_lines(human_patch) if human_patch else None,
        "human_patch_cut": bool(human_patch and len(human_patch) > MAX_PATCH_CHARS),
        "charts": charts,
    }


def _cell(
    col: Column, record: Mapping[str, Any] | None, info: TaskInfo, output: Path | None
) -> dict[str, Any]:
    base = {"column": col.label, "agent": col.agent, "run": col.source.label}
    if record is None:
        return {
            **base,
            "present": False,
            "verdict": "missing",
            "quadrant": "missing",
            "patch": None,
            "sort": _sort_key("missing", None),
        }
    detail = record.get("hard_detail") or {}
    measured = record.get("measured") or {}
    status = record.get("status") or "ok"
    verdict = "error" if status == "error" else str(record.get("hard") or "-")
    folder = col.source.path / info.id / agent_slug(col.agent)
    patch = _read(folder / "patch.diff")
    flags = []
    if text := inconclusive_text(detail if detail else {"inconclusive": record.get("inconclusive")}):
        flags.append(text.removeprefix(", "))
    if record.get("touches_benchmark"):
        flags.append("patch changed benchmark files: " + ", ".join(record["touches_benchmark"]))
    workload = measured.get("workload") or {}
    if isinstance(workload, dict) and workload.get("changed"):
        changed = ", ".join(
            f"{k} {v.get('human')} -> {v.get('agent')}" for k, v in workload["changed"].items()
        )
        flags.append(f"workload differs from the human's: {changed}")
    if detail.get("human_gain_measurable") is False:
        flags.append("human gain not measurable here (human vs baseline inside the noise)")
    flags += [str(w) for w in measured.get("warnings") or []]
    run = record.get("agent_run") or {}
    tokens = run.get("tokens") if isinstance(run.get("tokens"), dict) else None
    soft = record.get("soft") or {}
    return {
        **base,
        "present": True,
        "status": status,
        "verdict": verdict,
        "pct": record.get("hard_pct"),
        "metric": record.get("hard_metric") or info.metric,
        "reason": record.get("hard_reason"),
        "error": record.get("error"),
        "quadrant": record.get("quadrant") or "unscored",
        "bottleneck": record.get("bottleneck"),
        "approach": record.get("approach"),
        "ci": detail.get("ci_pct"),
        "inconclusive": bool(record.get("inconclusive") or detail.get("inconclusive")),
        "flags": flags,
        "correctness": record.get("correctness"),
        "correctness_detail": _correctness(record.get("correctness_detail") or {}),
        "judges": _judges(soft),
        "judge_error": soft.get("error"),
        "stop_reason": run.get("stop_reason") or (EXITED if run else None),
        "turns": run.get("turns"),
        "tokens": tokens,
        "cost_usd": run.get("cost_usd"),
        "agent_s": run.get("duration_s"),
        "duration_s": record.get("duration_s"),
        "patch": patch,
        "patch_lines": _diff_lines(patch) if patch is not None else None,
        "patch_cut": bool(patch and len(patch) > MAX_PATCH_CHARS),
        "links": _links(folder, output),
        "detail": detail,
        "rounds": _rounds(measured, record.get("hard_metric") or info.metric),
        "sort": _sort_key(verdict, record.get("hard_pct")),
    }


SORT_ORDER = ("beats", "similar", "worse", "failed", "error", "missing")


def _sort_key(verdict: str, pct: float | None) -> str:
    """A string that sorts a grid cell: best verdict first, then the higher percentage first."""
    rank = SORT_ORDER.index(verdict) if verdict in SORT_ORDER else len(SORT_ORDER)
    return f"{rank}{round((1e6 - (pct or 0.0)) * 100):012d}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _diff_lines(patch: str) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff, cut at ``MAX_PATCH_CHARS``."""
    lines = []
    for line in patch[:MAX_PATCH_CHARS].splitlines():
        if line.startswith(("+++", "---", "diff ", "index ", "new file", "deleted file")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        lines.append((kind, line))
    return lines


def _correctness(detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    keep = ("status", "kind", "reason", "detail", "note", "message")
    return [(k, str(detail[k])[:2000]) for k in keep if detail.get(k) not in (None, "", [], {})]


def _judges(soft: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    for verdict in soft.get("verdicts") or []:
        target = verdict.get("bottleneck_target") or {}
        approach = verdict.get("approach_comparison") or {}
        found.append(
            {
                "judge": verdict.get("judge"),
                "status": verdict.get("status"),
                "error": verdict.get("error"),
                "bottleneck": target.get("category"),
                "bottleneck_why": target.get("rationale"),
                "human_target": target.get("human_target"),
                "agent_target": target.get("agent_target"),
                "approach": approach.get("category"),
                "approach_why": approach.get("rationale"),
                "cached": verdict.get("cached"),
            }
        )
    return found


def _links(folder: Path, output: Path | None) -> list[tuple[str, str]]:
    """(name, relative href) of the artifact files, when the run folder is reachable from the report."""
    if output is None or not folder.is_dir():
        return []
    base = output.resolve().parent
    found = []
    for path in sorted(folder.iterdir()):
        href = Path(os.path.relpath(path.resolve(), base)).as_posix()
        found.append((path.name + ("/" if path.is_dir() else ""), href))
    return found


def _rounds(measured: Mapping[str, Any], metric: str | None) -> list[tuple[str, list[float]]]:
    """Per variant, the primary metric of every measured round (warm-ups and failed runs left out)."""
    runs = measured.get("runs") or {}
    if not metric or not isinstance(runs, dict):
        return []
    rows = []
    for variant in ("baseline", "human", "agent"):
        values = [
            float(r["metrics"][metric])
            for r in runs.get(variant) or []
            if isinstance(r, dict)
            and r.get("round", 0) >= 0
            and r.get("status") == "ok"
            and isinstance(r.get("metrics"), dict)
            and isinstance(r["metrics"].get(metric), int | float)
        ]
        if values:
            rows.append((variant, values))
    return rows


def _charts(info: TaskInfo, cells: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """Speedup against baseline (human, then each agent) with intervals; rounds as dots per variant."""
    present = [c for c in cells if c["present"]]
    charts = []
    human = next((c["detail"] for c in present if c["detail"].get("human_vs_baseline_pct") is not None), None)
    bars = []
    if human is not None:
        ci = human.get("human_vs_baseline_ci_pct")
        bars.append(Bar("human", human["human_vs_baseline_pct"], tuple(ci) if ci else None))
    for cell in present:
        if cell["agent"] == HUMAN_AGENT and human is not None:
            continue
        bars.append(Bar(cell["column"], cell["detail"].get("agent_vs_baseline_pct")))
    if any(b.value is not None for b in bars):
        caption = "gain against baseline (%, positive = better; whiskers: interval)"
        charts.append((caption, bar_chart(f"{info.id}: {caption}", bars)))
    vs_human = [
        Bar(c["column"], c["pct"], tuple(c["ci"]) if c["ci"] else None)
        for c in present
        if c["status"] == "ok"
    ]
    if any(b.value is not None for b in vs_human):
        band = next((c["detail"].get("band") for c in present if c["detail"].get("band") is not None), 5.0)
        caption = f"against the human (%; dashed: ±{float(band):g} % band)"
        charts.append((caption, bar_chart(f"{info.id}: {caption}", vs_human, band=float(band))))
    for cell in present:
        if cell["rounds"]:
            caption = f"{cell['column']}: {cell['metric']} of every round (tick: median)"
            charts.append((caption, dot_plot(f"{info.id}, {caption}", cell["rounds"])))
    return charts


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pytest_isobench.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{v:+.1f} %"
    env.filters["num"] = lambda v: "n/a" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
    env.filters["usd"] = lambda v: "n/a" if v is None else f"${v:.4f}"
    return env


def render(page: Page) -> str:
    return environment().get_template("report.html.j2").render(page=page)


def write_report(
    sources: Sequence[Source],
    output: Path,
    catalog: Mapping[str, TaskInfo] | None = None,
    title: str = "ISO-Bench report",
    cache_dir: Path | None = None,
) -> Path:
    """Render the page for these runs into ``output`` (its folder is created); secrets redacted."""
    output.parent.mkdir(parents=True, exist_ok=True)
    page = build_context(sources, catalog, output, title, cache_dir)
    output.write_text(redact(render(page)), encoding="utf-8")
    return output
