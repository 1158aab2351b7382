"""Keep secrets out of everything the harness writes, logs, reports or sends.

A secret is the value of a secret-looking variable of the harness's environment (``*_API_KEY``,
``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, a few known key names, and the names given with
``--isobench-redact``), whatever it looks like, plus common key shapes (``sk-...``, bearer tokens)
for keys that came from elsewhere. ``redact`` replaces them by a label naming the variable.

Where it applies: every artifact file of a task (``redact_tree``, streaming, so a 500 MB log is
never loaded whole), ``outcome.json`` and ``outcomes.jsonl``, what a judge is sent and what it
returns, every log record (``install_logging``: a record factory, so ``--log-cli-level``, caplog,
json-report and junitxml only ever see redacted text) and failure reports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# Known key variables whose names the suffix rule below would miss.
KEY_ENV_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENROUTER_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
)
_SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(?:API_?KEY|TOKEN|SECRET|SECRET_KEY|ACCESS_KEY|PRIVATE_KEY|PASSWORD|PASSWD|CREDENTIALS?)$"
)
# Harness variables that only look like secrets (the process-tree token of sandbox/procs.py).
_NOT_SECRET = frozenset({"ISOBENCH_PROCESS_TOKEN"})
# Values shorter than this are not treated as secrets: replacing "1" everywhere would mangle text.
_MIN_SECRET_LEN = 6
_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=]{12,}"),
    re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9_\-.]{12,}"),
)
_SHAPE_HINTS = ("sk-", "bearer", "x-api-key")  # each pattern matches only text holding its hint
# How much of a streamed file is held back between chunks, beyond the longest secret, so that a
# key-shaped token split by a chunk boundary is still caught whole.
_SHAPE_MARGIN = 512
_CHUNK = 1 << 20

_configured: set[str] = set()  # names given with --isobench-redact (this process)


def configure(names: Iterable[str]) -> None:
    """Also treat the variables ``names`` as secrets (``--isobench-redact NAME``)."""
    _configured.clear()
    _configured.update(n.strip() for n in names if n.strip())


def is_secret_name(name: str) -> bool:
    """True for a variable whose value the harness keeps to itself."""
    if name in _NOT_SECRET:
        return False
    return name in KEY_ENV_VARS or name in _configured or bool(_SECRET_NAME.search(name))


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` less every secret-looking variable."""
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def secret_values(extra: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(label, value) of every secret to hide: the secret variables set now, plus ``extra`` values."""
    found = [(name, value) for name, value in os.environ.items() if is_secret_name(name)]
    found += [("api key", value) for value in extra]
    pairs: dict[str, str] = {}
    for label, value in found:  # the first label of a value wins: the variable's name
        if len(value.strip()) >= _MIN_SECRET_LEN:
            pairs.setdefault(value, label)
    return sorted(((label, value) for value, label in pairs.items()), key=lambda pair: -len(pair[1]))


def _redact_values(text: str, pairs: list[tuple[str, str]]) -> str:
    for label, value in pairs:  # longest first: a key may contain another
        if value in text:
            text = text.replace(value, f"[redacted {label}]")
    return text


def _redact_shapes(text: str) -> str:
    # A substring test first: the patterns cost ~0.1 s per MB, a big clean log should not pay that.
    lower = text.lower()
    if _SHAPE_HINTS[0] in lower:
        text = _SHAPES[0].sub("[redacted key]", text)
    for hint, shape in zip(_SHAPE_HINTS[1:], _SHAPES[1:], strict=True):
        if hint in lower:
            text = shape.sub(lambda m: f"{m.group(1)}[redacted key]", text)
    return text


def _redact_with(text: str, pairs: list[tuple[str, str]]) -> str:
    return _redact_shapes(_redact_values(text, pairs))


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and key-shaped token replaced by a label."""
    return _redact_with(text, secret_values(extra))


def contains_secret(text: str) -> list[str]:
    """The names of the secret variables whose values ``text`` holds (for flagging, never the value)."""
    return sorted({label for label, value in secret_values() if value in text})


def redact_data(data: Any) -> Any:
    """A copy of JSON-like ``data`` with every string redacted (keys included)."""
    pairs = secret_values()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _redact_with(value, pairs)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(walk(v) for v in value)
        return value

    return walk(data)


# -- files -------------------------------------------------------------------------------------


def _chunks(handle: Any, keep: int, pairs: list[tuple[str, str]]) -> Iterator[tuple[str, bool]]:
    """(redacted text, whether it changed) of a stream, chunk by chunk. The last ``keep`` characters of
    each chunk wait for the next one (and so does a key-shaped token cut by that boundary), so a secret
    split by a chunk boundary is still found whole."""
    pending = ""
    while True:
        data = handle.read(_CHUNK)
        text = _redact_values(pending + data, pairs)
        changed = text != pending + data
        if not data:
            clean = _redact_shapes(text)
            yield clean, changed or clean != text
            return
        cut = max(0, len(text) - keep)
        for shape in _SHAPES:  # only the last 2 * keep characters: cheap
            for match in shape.finditer(text, max(0, cut - keep)):
                if match.start() < cut < match.end():
                    cut = match.start()
        head = text[:cut]
        clean = _redact_shapes(head)
        yield clean, changed or clean != head
        pending = text[cut:]


def redact_file(path: Path) -> bool:
    """Redact one file in place, streaming; True when something was replaced (else it is left
    untouched). Binary-safe: bytes that are not UTF-8 pass through unchanged."""
    pairs = secret_values()
    keep = max((len(v) for _, v in pairs), default=0) + _SHAPE_MARGIN
    tmp = path.with_name(f".{path.name}.redact.tmp")
    changed = False
    try:
        with (
            path.open(encoding="utf-8", errors="surrogateescape", newline="") as src,
            tmp.open("w", encoding="utf-8", errors="surrogateescape", newline="") as dst,
        ):
            for text, replaced in _chunks(src, keep, pairs):
                dst.write(text)
                changed = changed or replaced
        if changed:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


def redact_tree(root: Path) -> list[Path]:
    """Redact every regular file under ``root`` (links are not followed); the files changed."""
    changed: list[Path] = []
    if not root.is_dir():
        return changed
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            with contextlib.suppress(OSError):
                if redact_file(path):
                    changed.append(path)
    return changed


def redact_report(report: Any, item: Any = None) -> None:
    """Redact a pytest report in place: the failure text, captured output and user properties, and
    the item's captured sections (which some plugins, pytest-json-report, read directly)."""
    pairs = secret_values()
    if report.longrepr is not None:
        text = report.longreprtext
        clean = _redact_with(text, pairs)
        if clean != text:
            report.longrepr = clean
    report.sections = [(title, _redact_with(content, pairs)) for title, content in report.sections]
    report.user_properties = [tuple(redact_data(list(prop))) for prop in report.user_properties]
    sections = getattr(item, "_report_sections", None)
    if isinstance(sections, list):
        sections[:] = [(when, key, _redact_with(content, pairs)) for when, key, content in sections]


# -- logging -----------------------------------------------------------------------------------

# Loggers that put request bodies (prompts, so possibly keys) and headers into DEBUG records.
SDK_LOGGERS = ("anthropic", "openai", "httpx", "httpcore", "httpx2", "httpcore2")
_state: dict[str, Any] = {}


def _redacting_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        pairs = secret_values()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep pytest's own handling of it
            return record
        record.msg, record.args = _redact_with(message, pairs), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _redact_with(logging.Formatter().formatException(record.exc_info), pairs)
        if record.stack_info:
            record.stack_info = _redact_with(record.stack_info, pairs)
        return record

    return factory


def install_logging() -> None:
    """Redact every log record at creation; quiet the SDK loggers unless their level was set.

    A logger whose level the user set (in a conftest, or the SDK's own ``ANTHROPIC_LOG`` /
    ``OPENAI_LOG``) keeps it: asking for request logs explicitly still gets them, redacted.
    """
    _state["depth"] = _state.get("depth", 0) + 1  # a pytester run inside a pytest run nests
    if _state["depth"] > 1:
        return
    previous = logging.getLogRecordFactory()
    _state["factory"] = previous
    logging.setLogRecordFactory(_redacting_factory(previous))
    raised = []
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET and not os.environ.get(f"{name.upper()}_LOG"):
            logger.setLevel(logging.WARNING)
            raised.append(logger)
    _state["raised"] = raised


def uninstall_logging() -> None:
    """Undo ``install_logging`` (the previous record factory and the SDK loggers' levels)."""
    _state["depth"] = max(0, _state.get("depth", 0) - 1)
    if _state["depth"] > 0 or "factory" not in _state:
        return
    logging.setLogRecordFactory(_state.pop("factory"))
    for logger in _state.pop("raised", []):
        if logger.level == logging.WARNING:
            logger.setLevel(logging.NOTSET)
    _state.clear()


__all__ = [
    "KEY_ENV_VARS",
    "SDK_LOGGERS",
    "configure",
    "contains_secret",
    "install_logging",
    "is_secret_name",
    "redact",
    "redact_data",
    "redact_file",
    "redact_report",
    "redact_tree",
    "secret_values",
    "uninstall_logging",
    "without_secrets",
]
