"""The outcome of one (task, agent) and its files: ``outcome.json`` and the run's ``outcomes.jsonl``."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WIRE_VERSION = 1
OUTCOMES_FILE = "outcomes.jsonl"


class Outcome(BaseModel):
    """Everything recorded for one (task, agent, run). Flat keys first; details nested.

    ``status`` is ``ok`` when a hard verdict was reached, ``error`` when infrastructure failed
    (the task errors, it is not an agent failure).
    """

    model_config = ConfigDict(extra="forbid")

    v: int = WIRE_VERSION
    task_id: str
    repo: str
    agent: str
    run_id: str
    status: Literal["ok", "error"] = "ok"
    hard: Literal["beats", "similar", "worse", "failed"] | None = None
    hard_pct: float | None = None
    hard_metric: str | None = None
    hard_reason: str | None = None
    inconclusive: bool = False
    bottleneck: str | None = None
    approach: str | None = None
    quadrant: str = "unscored"
    correctness: str | None = None
    timed_out: bool = False
    touches_benchmark: list[str] = Field(default_factory=list)
    error: str | None = None
    hints: str = "none"
    duration_s: float = 0.0
    artifacts: str = ""
    hard_detail: dict[str, Any] = Field(default_factory=dict)
    agent_run: dict[str, Any] = Field(default_factory=dict)
    patch: dict[str, Any] = Field(default_factory=dict)
    measured: dict[str, Any] = Field(default_factory=dict)
    soft: dict[str, Any] = Field(default_factory=dict)
    correctness_detail: dict[str, Any] = Field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """Builtins only: what crosses pytest-xdist and lands in the JSON report."""
        return self.model_dump(mode="json")


def append_outcome(run_dir: Path, outcome: Outcome) -> None:
    """Append one line to the run's outcomes.jsonl; safe with several writer processes.

    Every record starts on a fresh line: after a crash mid-write left a torn last line, the next
    record is not glued onto it (the reader then skips only the torn line).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(outcome.to_wire(), sort_keys=True) + "\n").encode("utf-8")
    with (run_dir / OUTCOMES_FILE).open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a crash leaves the old file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class OutcomesFileError(ValueError):
    """An outcomes file or run directory that cannot be read; the message names file and line."""


def read_outcomes(path: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Records of an outcomes.jsonl (or of a run directory holding one); the last per (task, agent) wins.

    A line that is not JSON (a write torn by a crash) is skipped, and ``file:line`` with the reason is
    added to ``skipped``; a file with such lines and no record at all is not an outcomes file (error).
    """
    file = path / OUTCOMES_FILE if path.is_dir() else path
    if not file.is_file():
        raise OutcomesFileError(f"{path}: no {OUTCOMES_FILE} here (give the file or a run directory)")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    torn: list[str] = []
    for number, record in jsonl_objects(file, OutcomesFileError, torn=torn):
        for key in ("task_id", "repo", "agent", "hard"):
            if key not in record:
                raise OutcomesFileError(f"{file}:{number}: record has no {key!r} key")
        latest[(str(record["task_id"]), str(record["agent"]))] = record
    if torn and not latest:
        raise OutcomesFileError(torn[0])
    if skipped is not None:
        skipped.extend(f"{reason}; skipped (a write torn by a crash?)" for reason in torn)
    return list(latest.values())


def jsonl_objects(
    file: Path, error: type[ValueError] = ValueError, *, torn: list[str] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line; anything else raises ``error`` naming file:line.

    With a ``torn`` list, a line that is not JSON is recorded there (``file:line: not JSON: ...``)
    and skipped instead.
    """
    with file.open(encoding="utf-8", errors="strict" if torn is None else "replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if torn is None:
                    raise error(f"{file}:{number}: not JSON: {exc.msg}") from None
                torn.append(f"{file}:{number}: not JSON: {exc.msg}")
                continue
            if not isinstance(record, dict):
                raise error(f"{file}:{number}: expected a JSON object")
            yield number, record
