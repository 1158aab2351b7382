"""Judge verdicts cached under ``<cache>/judge/``, so a rerun makes no model call.

The key covers what the verdict depends on: the judge spec, its prompt version, the description, both
patches, the A/B order shown and the trim limit (a different order or limit is a different prompt).
Only ``ok`` verdicts are stored: an error is worth retrying next time. Entries are redacted before
they are written, and a damaged entry counts as a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from ..results import write_json
from .base import JudgeContext, SoftVerdict
from .secrets import redact

CACHE_FORMAT = 1


def verdict_key(spec: str, prompt_version: int, ctx: JudgeContext) -> str:
    """Content hash of everything one judge's verdict depends on."""
    digest = hashlib.sha256()
    for part in (
        f"format={CACHE_FORMAT}",
        f"spec={spec}",
        f"prompt={prompt_version}",
        f"order={ctx.order}",
        f"max_patch_chars={ctx.max_patch_chars}",
        ctx.input.description,
        ctx.input.human_patch,
        ctx.input.agent_patch,
    ):
        encoded = part.encode("utf-8", errors="surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)  # length-prefixed: no ambiguous joins
    return digest.hexdigest()


class VerdictCache:
    """Files ``<cache>/judge/<key[:2]>/<key>.json`` holding ``{"key": ..., "verdict": {...}}``."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "judge"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> SoftVerdict | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("key") != key:
                return None
            verdict = SoftVerdict.model_validate(data["verdict"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            return None
        return verdict if verdict.status == "ok" else None

    def store(self, key: str, verdict: SoftVerdict) -> None:
        if verdict.status != "ok":
            return
        clean = SoftVerdict.model_validate_json(redact(verdict.model_dump_json()))
        with contextlib.suppress(OSError):  # an unwritable cache costs a model call next time, no more
            write_json(self._path(key), {"key": key, "verdict": clean.model_dump(mode="json")})
