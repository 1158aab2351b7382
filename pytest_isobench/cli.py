"""Command-line tools that run without pytest: validate task files, print source hashes, summarize."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .report.runs import Source, columns, labelled_records, load_sources
from .tasks import (
    BrokenTaskFile,
    CatalogEntry,
    LoadedTask,
    curation_gaps,
    empty_roots,
    load_catalog,
    no_tasks_message,
    source_problems,
)


def _validate(args: argparse.Namespace) -> int:
    roots = [Path(p) for p in args.paths] or [Path("tasks")]
    for root in roots:
        if not root.exists():
            print(f"error: {root} does not exist", file=sys.stderr)
            return 2
    empty = empty_roots(roots)
    for root in empty:
        print(f"error: {no_tasks_message(root)}", file=sys.stderr)
    if empty:
        return 2
    entries = [_check_source(entry) for entry in load_catalog(roots)]
    broken = [e for e in entries if isinstance(e, BrokenTaskFile)]
    gaps = {e.path: curation_gaps(e.task) for e in entries if isinstance(e, LoadedTask)}
    for bad in broken:
        print(bad.message)
    for path, problems in gaps.items():
        for problem in problems:
            print(f"{path}: {problem}")
    unfinished = sum(1 for problems in gaps.values() if problems)
    print(
        f"{len(entries)} task file(s): {len(entries) - len(broken)} valid, {len(broken)} broken,"
        f" {unfinished} not fully curated"
    )
    return 1 if broken or (args.strict and unfinished) else 0


def _check_source(entry: CatalogEntry) -> CatalogEntry:
    """A source task whose tree or patch is missing is broken (collection finds out only when it runs)."""
    if isinstance(entry, LoadedTask) and (problems := source_problems(entry)):
        return BrokenTaskFile(entry.path, "\n".join(problems), entry.id)
    return entry


def _hashes(args: argparse.Namespace) -> int:
    from .sandbox.repos import RepoError, build_source_repo

    status = 0
    for entry in load_catalog([Path(p) for p in args.paths]):
        if isinstance(entry, BrokenTaskFile):
            print(entry.message, file=sys.stderr)
            status = 1
            continue
        if entry.task.source is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                base, human = build_source_repo(entry.task, entry.path, Path(tmp) / "repo")
            except RepoError as exc:
                print(exc, file=sys.stderr)
                status = 1
                continue
        print(f'{entry.path}:\nbase_commit = "{base}"\nhuman_commit = "{human}"')
    return status


def _summarize(args: argparse.Namespace) -> int:
    from .report import agent_costs, render_agent_costs
    from .scoring import LEGEND, render_table, summarize

    loaded = _load_runs(args.paths)
    if loaded is None:
        return 2
    records = labelled_records(columns(loaded))
    groups = summarize(records)
    agents = agent_costs(records)
    if args.format == "json":
        print(json.dumps({"groups": groups, "agents": agents}, indent=2))
    else:
        for line in render_table(groups):
            print(line)
        print(LEGEND)
        if agents:
            print()
            for line in render_agent_costs(agents):
                print(line)
    return 0


def _load_runs(paths: Sequence[str]) -> list[Source] | None:
    """The runs named on the command line; None (after saying why on stderr) when one cannot be read."""
    from .results import OutcomesFileError

    skipped: list[str] = []
    try:
        sources = load_sources([Path(p) for p in paths], skipped)
    except OutcomesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    for line in skipped:
        print(f"warning: {line}", file=sys.stderr)
    return sources


def _task_roots(given: Sequence[str]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    return [Path(p) for p in os.environ.get("ISOBENCH_TASKS", "tasks").split(os.pathsep) if p]


def _report(args: argparse.Namespace) -> int:
    from .report.html import catalog_info, write_report

    roots = _task_roots(args.tasks)
    for root in roots:
        if args.tasks and not root.exists():
            print(f"error: --tasks {root} does not exist (give a task file or a task root)", file=sys.stderr)
            return 2
    sources = _load_runs(args.paths)
    if sources is None:
        return 2
    output = Path(args.output)
    if output.is_dir():
        print(
            f"error: -o {output} is a folder; give the HTML file to write, e.g. {output}/report.html",
            file=sys.stderr,
        )
        return 2
    cache = args.cache_dir or os.environ.get("ISOBENCH_CACHE_DIR") or ".isobench/cache"
    write_report(sources, output, catalog_info(roots), title=args.title, cache_dir=Path(cache))
    print(f"wrote {output} ({sum(len(s.records) for s in sources)} outcomes from {len(sources)} run(s))")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .report.runs import compare, render_compare

    sources = _load_runs([args.run_a, args.run_b])
    if sources is None:
        return 2
    a, b = sources
    try:
        result = compare(columns([a]), columns([b]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps({"a": str(args.run_a), "b": str(args.run_b), **result}, indent=2))
    else:
        for line in render_compare(result, f"{a.label} ({args.run_a})", f"{b.label} ({args.run_b})"):
            print(line)
    return 0


def _tasks(args: argparse.Namespace) -> int:
    roots = _task_roots(args.tasks)
    for root in roots:
        if not root.exists():
            print(f"error: task root {root} does not exist (give --tasks PATH)", file=sys.stderr)
            return 2
    entries = load_catalog(roots)
    loaded = [e for e in entries if isinstance(e, LoadedTask)]
    try:
        chosen = select_tasks(loaded, [], args.keyword, args.markexpr)
    except Exception as exc:  # pytest's expression parser: a bad -k / -m
        print(f"error: bad selection expression: {exc}", file=sys.stderr)
        return 2
    rows = [
        {
            "id": e.id,
            "repo": e.task.repo,
            "mode": e.task.benchmark.mode,
            "metric": e.task.benchmark.metric,
            "model": e.task.benchmark.model,
            "gpus": e.task.benchmark.gpus or 0,
            "status": e.task.status,
            "title": e.task.title,
        }
        for e in chosen
    ]
    broken = [e for e in entries if isinstance(e, BrokenTaskFile)]
    if args.format == "json":
        print(json.dumps({"tasks": rows, "broken": [b.message for b in broken]}, indent=2))
        return 0
    keys = ("id", "repo", "mode", "metric", "model", "gpus", "status")
    cells = [list(keys)] + [["-" if r[k] is None else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    print(f"{len(rows)} task(s)" + (f"; {len(broken)} broken task file(s) left out" if broken else ""))
    for bad in broken:
        print(f"broken: {bad.message.splitlines()[0]}", file=sys.stderr)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from .sandbox import reaper

    status = 0
    if args.backend in ("all", "local"):
        status = reaper.cleanup_main(Path(args.cache_dir), dry_run=args.dry_run, force=args.force)
    if args.backend in ("all", "docker"):
        from .sandbox.engine import EngineUnavailable, cleanup_main

        try:
            status = max(status, cleanup_main(args.run_id, dry_run=args.dry_run, force=args.force))
        except EngineUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return status


def select_tasks(
    tasks: Sequence[LoadedTask], ids: Sequence[str], keyword: str | None, marks: str | None
) -> list[LoadedTask]:
    """Tasks by id, ``-k`` (substring of the id or a marker name, as pytest matches) and ``-m``."""
    from _pytest.mark.expression import Expression

    keyword_expr = Expression.compile(keyword) if keyword else None
    mark_expr = Expression.compile(marks) if marks else None

    def chosen(entry: LoadedTask) -> bool:
        names = (entry.id, "isobench", *entry.task.marks)
        if ids and entry.id not in ids:
            return False
        if keyword_expr and not keyword_expr.evaluate(
            lambda sub, /, **_kw: any(sub.lower() in n.lower() for n in names)
        ):
            return False
        return not mark_expr or mark_expr.evaluate(lambda name, /, **_kw: name in names[1:])

    return [entry for entry in tasks if chosen(entry)]


def _env_path(value: str | None, variable: str) -> Path | None:
    text = value or os.environ.get(variable)
    return Path(text).expanduser().resolve() if text else None


def _prefetch(args: argparse.Namespace) -> int:
    from .inputs import hub_cache, needed, prefetch

    roots = [Path(p) for p in args.tasks] or [
        Path(p) for p in os.environ.get("ISOBENCH_TASKS", "tasks").split(os.pathsep) if p
    ]
    for root in roots:
        if not root.exists():
            print(f"error: task root {root} does not exist (give --tasks PATH)", file=sys.stderr)
            return 2
    entries = load_catalog(roots)
    for bad in entries:
        if isinstance(bad, BrokenTaskFile):
            print(f"skipped: {bad.message}", file=sys.stderr)
    loaded = [e for e in entries if isinstance(e, LoadedTask)]
    unknown = sorted(set(args.ids) - {e.id for e in loaded})
    if unknown:
        print(
            f"error: no task with id {', '.join(unknown)} under {', '.join(map(str, roots))}", file=sys.stderr
        )
        return 2
    try:
        chosen = select_tasks(loaded, args.ids, args.keyword, args.markexpr)
    except Exception as exc:  # pytest's expression parser: a bad -k / -m
        print(f"error: bad selection expression: {exc}", file=sys.stderr)
        return 2
    if not chosen:
        print("error: no task matches the selection", file=sys.stderr)
        return 2
    cache_dir = _env_path(args.cache_dir, "ISOBENCH_CACHE_DIR") or Path(".isobench/cache").resolve()
    dataset_dir = _env_path(args.dataset_cache, "ISOBENCH_DATASET_CACHE") or cache_dir / "datasets"
    model_cache = _env_path(args.model_cache, "ISOBENCH_MODEL_CACHE")
    tasks = [e.task for e in chosen]
    if args.dry_run:
        hub = hub_cache(model_cache)
        missing = 0
        for task in tasks:
            for item in needed(task, dataset_dir, hub):
                missing += not item.present
                state = "cached" if item.present else "missing"
                print(f"{task.id}: {item.kind} {item.name}: {state} ({item.path})")
        print(f"{len(tasks)} task(s), {missing} input(s) missing")
        return 1 if missing else 0
    print(f"prefetching the inputs of {len(tasks)} task(s) into {dataset_dir} and {hub_cache(model_cache)}")
    problems = prefetch(tasks, dataset_dir, model_cache, say=lambda line: print(line, flush=True))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_isobench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check task files; exit 1 if any is broken")
    validate.add_argument("paths", nargs="*", help="task files or task roots (default: tasks)")
    validate.add_argument("--strict", action="store_true", help="also fail when a task is not fully curated")
    validate.set_defaults(func=_validate)
    hashes = sub.add_parser("hashes", help="print the commit hashes a source (smoke) task builds")
    hashes.add_argument("paths", nargs="+", help="task files or task roots")
    hashes.set_defaults(func=_hashes)
    summary = sub.add_parser(
        "summarize",
        help="rebuild the summary table and the agents' spending from outcomes, running nothing",
    )
    summary.add_argument(
        "paths", nargs="+", metavar="PATH", help="outcomes.jsonl files or run directories (one row per agent)"
    )
    summary.add_argument("--format", choices=("text", "json"), default="text")
    summary.set_defaults(func=_summarize)
    report = sub.add_parser(
        "report", help="write the HTML report of one or more runs (every agent side by side), running nothing"
    )
    report.add_argument("paths", nargs="+", metavar="RUN", help="run directories or outcomes.jsonl files")
    report.add_argument("-o", "--output", default="report.html", help="the HTML file (default: report.html)")
    report.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="PATH",
        help="task roots for titles, descriptions and the human patches (default: tasks, env ISOBENCH_TASKS)",
    )
    report.add_argument("--title", default="ISO-Bench report", help="the page's title")
    report.add_argument(
        "--cache-dir",
        help="the harness cache, where cloned task repositories give the human patches (default:"
        " .isobench/cache, env ISOBENCH_CACHE_DIR; nothing is fetched)",
    )
    report.set_defaults(func=_report)
    comp = sub.add_parser(
        "compare", help="the tasks whose verdict or quadrant differs between two runs; hard %% and true %%"
    )
    comp.add_argument("run_a", metavar="RUN_A", help="run directory or outcomes.jsonl (before)")
    comp.add_argument("run_b", metavar="RUN_B", help="run directory or outcomes.jsonl (after)")
    comp.add_argument("--format", choices=("text", "json"), default="text")
    comp.set_defaults(func=_compare)
    listing = sub.add_parser(
        "tasks", help="list tasks: repo, mode, metric, model, GPUs, status (the same selection as pytest)"
    )
    listing.add_argument("-k", dest="keyword", metavar="EXPR", help="as pytest -k: task ids and marker names")
    listing.add_argument("-m", dest="markexpr", metavar="MARKEXPR", help="as pytest -m: marker expression")
    listing.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="PATH",
        help="task root (default: tasks, env ISOBENCH_TASKS)",
    )
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(func=_tasks)
    clean = sub.add_parser(
        "cleanup",
        help="end the local backend's leftover processes (after a killed pytest); remove the docker"
        " backend's leftover containers, networks, volumes",
    )
    clean.add_argument(
        "--backend", choices=("all", "local", "docker"), default="all", help="which leftovers (default: all)"
    )
    clean.add_argument(
        "--cache-dir",
        default=os.environ.get("ISOBENCH_CACHE_DIR") or ".isobench/cache",
        help="local: the cache folder of the runs (--isobench-cache-dir; default: .isobench/cache)",
    )
    clean.add_argument("--run-id", help="docker: only this run's (default: every earlier run's)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    clean.add_argument("--force", action="store_true", help="also what a still-running pytest process owns")
    clean.set_defaults(func=_cleanup)
    fetch = sub.add_parser(
        "prefetch",
        help="while online: fill the dataset and model caches with what the selected tasks declare"
        " under [inputs]",
    )
    fetch.add_argument("ids", nargs="*", help="task ids (default: every task the selection matches)")
    fetch.add_argument("-k", dest="keyword", metavar="EXPR", help="as pytest -k: task ids and marker names")
    fetch.add_argument("-m", dest="markexpr", metavar="MARKEXPR", help="as pytest -m: marker expression")
    fetch.add_argument(
        "--tasks", action="append", default=[], metavar="PATH", help="task root (default: tasks)"
    )
    fetch.add_argument(
        "--cache-dir", help="the harness cache (default: .isobench/cache, env ISOBENCH_CACHE_DIR)"
    )
    fetch.add_argument(
        "--dataset-cache", help="dataset folder (default: <cache-dir>/datasets, env ISOBENCH_DATASET_CACHE)"
    )
    fetch.add_argument(
        "--model-cache",
        help="model folder, as HF_HOME (default: env ISOBENCH_MODEL_CACHE, else HF_HUB_CACHE, HF_HOME"
        " or ~/.cache/huggingface)",
    )
    fetch.add_argument(
        "--dry-run", action="store_true", help="list each input as cached or missing; fetch nothing"
    )
    fetch.set_defaults(func=_prefetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
