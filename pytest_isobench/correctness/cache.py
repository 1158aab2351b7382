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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..measure.cache import checksum, machine_fingerprint, package_versions
from ..results import write_json
from ..tasks import Task

CACHE_FORMAT = 1
CHECKS_DIR = Path(__file__).resolve().parent


@functools.cache
def check_code_hash() -> str:
    """Hash of the correctness code (every ``pytest_isobench/correctness/*.py``)."""
    digest = hashlib.sha256()
    for path in sorted(CHECKS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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

    def _path(self, task: Task, kind: str, key: str) -> Path:
        return self.root / task.id / f"{kind}-{key[:24]}.json"

    def load(self, task: Task, kind: str, key: str) -> tuple[Any | None, str | None]:
        """(result, None) when usable; (None, why) for a damaged or edited entry (then deleted);
        (None, None) when there is none."""
        path = self._path(task, kind, key)
        if not path.is_file():
            return None, None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            content = data["content"]
            if data.get("format") != CACHE_FORMAT or content.get("key") != key:
                return None, None
            if data.get("checksum") == checksum(content):
                return content["result"], None
            problem = "its checksum does not match its content (edited after it was written)"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"it cannot be read ({type(exc).__name__})"
        path.unlink(missing_ok=True)
        return (
            None,
            f"discarded the cached human {kind} result {path.name}: {problem}; asking the human again",
        )

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
        write_json(
            self._path(task, kind, key),
            {"format": CACHE_FORMAT, "checksum": checksum(content), "content": content},
        )
