"""Keep API keys out of everything the judge stage writes or raises.

An SDK error can quote a request or an endpoint can echo a header back, so every message and every
verdict goes through ``redact`` before it is stored, returned or raised. Two nets: the literal
values of the known key variables (whatever they look like), and common key shapes (``sk-...``,
bearer tokens) for keys that came from elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

KEY_ENV_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENROUTER_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
)
# Values shorter than this are not treated as secrets: replacing "1" everywhere would mangle text.
_MIN_SECRET_LEN = 6
_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=]{12,}"),
    re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9_\-.]{12,}"),
)


def secret_values(extra: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(label, value) of every secret to hide: the key variables set now, plus ``extra`` values."""
    found = [(name, os.environ.get(name, "")) for name in KEY_ENV_VARS]
    found += [("api key", value) for value in extra]
    pairs = [(label, value) for label, value in found if len(value) >= _MIN_SECRET_LEN]
    return sorted(pairs, key=lambda pair: -len(pair[1]))  # longest first: a key may contain another


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and key-shaped token replaced by a label."""
    for label, value in secret_values(extra):
        text = text.replace(value, f"[redacted {label}]")
    text = _SHAPES[0].sub("[redacted key]", text)
    for shape in _SHAPES[1:]:
        text = shape.sub(lambda m: f"{m.group(1)}[redacted key]", text)
    return text
