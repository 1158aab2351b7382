"""Checksummed JSON cache files, shared by the measurement cache, the correctness checks' cache and
the judges' verdict cache.

An entry lives at ``<root>/<task>/<kind>-<key[:24]>.json`` (the verdict cache, which has no task,
uses the key's first two characters as the folder) and holds ``{"format", "checksum",
"content"}``, where ``content`` carries the full ``key`` and ``checksum`` is the SHA-256 of the
content's canonical JSON. An entry of another format or key is ignored (not an alarm); one whose
checksum does not match or that cannot be read is deleted, so its value is produced again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .results import write_json

T = TypeVar("T")


def checksum(content: Any) -> str:
    """SHA-256 of the canonical JSON of an entry's content."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def source_hash(folder: Path) -> str:
    """Hash of the Python sources directly in ``folder`` (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class ChecksummedStore:
    """The entries of one cache: files under ``root`` written in layout ``fmt``."""

    def __init__(self, root: Path, fmt: int) -> None:
        self.root = root
        self.fmt = fmt

    def path(self, task_id: str, kind: str, key: str) -> Path:
        return self.root / task_id / f"{kind}-{key[:24]}.json"

    def load(
        self, task_id: str, kind: str, key: str, parse: Callable[[dict[str, Any]], T]
    ) -> tuple[T | None, str | None]:
        """(parse(content), None) when usable; (None, problem) when the entry exists but cannot be
        trusted (it is then deleted); (None, None) when there is none or it has another layout.
        An error raised by ``parse`` counts as an entry that cannot be read."""
        path = self.path(task_id, kind, key)
        if not path.is_file():
            return None, None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            content = data["content"]
            if data.get("format") != self.fmt or content.get("key") != key:
                return None, None  # another layout: produced again, not an alarm
            if data.get("checksum") == checksum(content):
                return parse(content), None
            problem = "its checksum does not match its content (edited after it was written)"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"it cannot be read ({type(exc).__name__})"
        path.unlink(missing_ok=True)
        return None, problem

    def store(self, task_id: str, kind: str, content: dict[str, Any]) -> None:
        """Write ``content`` (which carries its ``key``) with its checksum."""
        write_json(
            self.path(task_id, kind, content["key"]),
            {"format": self.fmt, "checksum": checksum(content), "content": content},
        )
