"""Judge verdicts cached under ``<cache>/judge/``, so a rerun makes no model call.

The key covers what the verdict depends on: the judge spec, its prompt version, the description, both
patches, the A/B order shown and the trim limit (a different order or limit is a different prompt).
Only ``ok`` verdicts are stored: an error is worth retrying next time. Entries are redacted before
they are written. They are checksummed files of the shared layout (``cachefile.py``): a damaged or
edited entry counts as a miss (and is deleted), so the judge is asked again.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from ..cachefile import ChecksummedStore
from .base import JudgeContext, SoftVerdict
from .secrets import redact

CACHE_FORMAT = 2  # 2: checksummed entries of the shared layout


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
    """Files ``<cache>/judge/<key[:2]>/verdict-<key[:24]>.json`` whose content is
    ``{"key": ..., "verdict": {...}}``."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "judge"
        self.files = ChecksummedStore(self.root, CACHE_FORMAT)

    def load(self, key: str) -> SoftVerdict | None:
        try:
            verdict, _ = self.files.load(key[:2], "verdict", key, _verdict)
        except OSError:  # an unreadable cache folder is a miss too
            return None
        return verdict if verdict is not None and verdict.status == "ok" else None

    def store(self, key: str, verdict: SoftVerdict) -> None:
        if verdict.status != "ok":
            return
        clean = SoftVerdict.model_validate_json(redact(verdict.model_dump_json()))
        with contextlib.suppress(OSError):  # an unwritable cache costs a model call next time, no more
            self.files.store(key[:2], "verdict", {"key": key, "verdict": clean.model_dump(mode="json")})


def _verdict(content: dict[str, object]) -> SoftVerdict:
    return SoftVerdict.model_validate(content["verdict"])
