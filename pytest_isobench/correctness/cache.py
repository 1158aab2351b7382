"""Cached human results of server checks, keyed by everything that could change them.

Like the human measurements (``measure/cache.py``): the key covers the task, the human commit, the
server command and environment, the check's own settings, the backend, the machine, the harness and
the correctness code, so a cached answer is only reused where the human server would give it again.
An entry whose checksum does not match its content is discarded (and the human asked again).
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..cachefile import ChecksummedStore, source_hash
from ..measure.cache import machine_fingerprint, package_versions
from ..tasks import Task

CACHE_FORMAT = 1
CHECKS_DIR = Path(__file__).resolve().parent


@functools.cache
def check_code_hash() -> str:
    """Hash of the correctness code (every ``pytest_isobench/correctness/*.py``)."""
    return source_hash(CHECKS_DIR)


def human_key(task: Task, config: BaseModel, *, backend: str, extra: dict[str, Any] | None = None) -> str:
    """Content hash of what the human server's answers to a check depend on."""
    bench = task.benchmark
    material = {
        "format": CACHE_FORMAT,
        "task": task.id,
        "commit": task.human_commit,
        "server": bench.server,
        "ready_url": bench.ready_url,
        "env": bench.env,
        "model": bench.model,
        "check": config.model_dump(mode="json", exclude={"note"}),
        "backend": backend,
        "machine": machine_fingerprint(),
        "harness": __version__,
        "check_code": check_code_hash(),
        **(extra or {}),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class HumanResultCache:
    """Files under ``<cache>/correctness/<task>/<kind>-<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "correctness"
        self.files = ChecksummedStore(self.root, CACHE_FORMAT)

    def load(self, task: Task, kind: str, key: str) -> tuple[Any | None, str | None]:
        """(result, None) when usable; (None, why) for a damaged or edited entry (then deleted);
        (None, None) when there is none."""
        result, problem = self.files.load(task.id, kind, key, operator.itemgetter("result"))
        if problem is None:
            return result, None
        name = self.files.path(task.id, kind, key).name
        return None, f"discarded the cached human {kind} result {name}: {problem}; asking the human again"

    def store(self, task: Task, kind: str, key: str, result: Any, info: dict[str, Any]) -> None:
        content = {
            "key": key,
            "result": result,
            "info": {
                "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "harness": __version__,
                "versions": package_versions(),
                "machine": machine_fingerprint(),
                **info,
            },
        }
        self.files.store(task.id, kind, content)
