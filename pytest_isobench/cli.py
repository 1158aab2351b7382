"""Command-line tools that run without pytest: validate task files, print source hashes, summarize."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .tasks import BrokenTaskFile, LoadedTask, curation_gaps, load_catalog


def _validate(args: argparse.Namespace) -> int:
    roots = [Path(p) for p in args.paths] or [Path("tasks")]
    for root in roots:
        if not root.exists():
            print(f"error: {root} does not exist", file=sys.stderr)
            return 2
    entries = load_catalog(roots)
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
    from .results import OutcomesFileError, read_outcomes
    from .scoring import LEGEND, render_table, summarize

    try:
        records = read_outcomes(Path(args.path))
    except OutcomesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    groups = summarize(records)
    if args.format == "json":
        print(json.dumps({"groups": groups}, indent=2))
    else:
        for line in render_table(groups):
            print(line)
        print(LEGEND)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from .sandbox.engine import EngineUnavailable, cleanup_main

    try:
        return cleanup_main(args.run_id, dry_run=args.dry_run, force=args.force)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


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
    summary = sub.add_parser("summarize", help="rebuild the summary table from outcomes, running nothing")
    summary.add_argument("path", help="an outcomes.jsonl file or a run directory")
    summary.add_argument("--format", choices=("text", "json"), default="text")
    summary.set_defaults(func=_summarize)
    clean = sub.add_parser(
        "cleanup", help="remove the docker backend's leftover containers, networks, volumes"
    )
    clean.add_argument("--run-id", help="only this run's (default: every earlier run's)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    clean.add_argument("--force", action="store_true", help="also what a still-running pytest process owns")
    clean.set_defaults(func=_cleanup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
