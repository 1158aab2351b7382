"""What a model call used, read from the response as it passes through the gateway.

Three wire APIs, each streamed (server-sent events) or not:

- Anthropic Messages: ``usage.input_tokens`` (uncached input), ``cache_creation_input_tokens``,
  ``cache_read_input_tokens``, ``output_tokens``; streamed, ``message_start`` carries the input side and
  ``message_delta`` the running output count.
- OpenAI Responses: ``usage.input_tokens`` (all input), ``input_tokens_details.cached_tokens``,
  ``output_tokens``; streamed, in the ``response.completed`` (or ``.incomplete`` / ``.failed``) event.
- OpenAI Chat Completions: ``usage.prompt_tokens``, ``prompt_tokens_details.cached_tokens``,
  ``completion_tokens``; streamed, in the last chunk (the gateway asks for it with
  ``stream_options.include_usage``).

Figures follow :class:`~pytest_isobench.agents.cli.Tokens`: ``input`` counts every input token,
``cached`` the part served from the provider's cache.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

# Bodies kept to read usage from (a non-streamed answer): beyond this the usage is not read.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Usage:
    input: int = 0
    output: int = 0
    cached: int = 0

    def add(self, other: Usage) -> None:
        self.input += other.input
        self.output += other.output
        self.cached += other.cached

    @property
    def total(self) -> int:
        return self.input + self.output

    def to_wire(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "cached": self.cached}


class UsageMeter:
    """Reads one response's usage from its bytes, fed as they arrive (``feed``), then ``result``."""

    def __init__(self, api: str, *, streamed: bool) -> None:
        self.api = api  # "messages", "responses", "chat_completions" (others carry no usage)
        self.streamed = streamed
        self.model: str | None = None
        self._usage: Usage | None = None
        self._buffer = bytearray()
        self._too_big = False
        self._anthropic: dict[str, Any] = {}  # a Messages stream's usage fields so far

    def feed(self, chunk: bytes) -> None:
        if self.streamed:
            self._buffer += chunk
            while (end := _event_end(self._buffer)) is not None:
                event, self._buffer = bytes(self._buffer[: end[0]]), self._buffer[end[1] :]
                self._event(event)
        elif not self._too_big:
            self._buffer += chunk
            if len(self._buffer) > MAX_BODY_BYTES:
                self._too_big, self._buffer = True, bytearray()

    def result(self) -> Usage | None:
        """The call's usage, or None when the response carried none (an error, a cut stream)."""
        if self.streamed:
            if self._buffer.strip():
                self._event(bytes(self._buffer))  # a last event without its blank line
                self._buffer = bytearray()
        elif self._buffer:
            with contextlib.suppress(ValueError):
                body = json.loads(self._buffer)
                if isinstance(body, dict):
                    self._object(body)
            self._buffer = bytearray()
        return self._usage

    # -- streamed ----------------------------------------------------------------------------

    def _event(self, raw: bytes) -> None:
        data = b"\n".join(line[5:].lstrip() for line in raw.splitlines() if line.startswith(b"data:")).strip()
        if not data.startswith(b"{"):
            return  # "[DONE]", comments, keep-alives
        with contextlib.suppress(ValueError):
            event = json.loads(data)
            if isinstance(event, dict):
                self._stream_event(event)

    def _stream_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if self.api == "messages":
            # message_start has the input side and a first output count; message_delta the running
            # output count (newer streams repeat input fields there): later figures win, field by field.
            if kind == "message_start" and isinstance(event.get("message"), dict):
                message = event["message"]
                self.model = _str(message.get("model")) or self.model
                self._merge_anthropic(message.get("usage"))
            elif kind == "message_delta":
                self._merge_anthropic(event.get("usage"))
        elif self.api == "responses":
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                response = event.get("response")
                if isinstance(response, dict):
                    self.model = _str(response.get("model")) or self.model
                    self._usage = openai_usage(response.get("usage")) or self._usage
        elif self.api == "chat_completions":
            self.model = _str(event.get("model")) or self.model
            if isinstance(event.get("usage"), dict):
                self._usage = openai_usage(event["usage"])

    def _merge_anthropic(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._anthropic.update({k: v for k, v in raw.items() if _int(v) is not None})
            self._usage = anthropic_usage(self._anthropic)

    # -- not streamed ------------------------------------------------------------------------

    def _object(self, body: dict[str, Any]) -> None:
        self.model = _str(body.get("model")) or self.model
        if self.api == "messages":
            self._usage = anthropic_usage(body.get("usage"))
        elif self.api in ("responses", "chat_completions"):
            self._usage = openai_usage(body.get("usage"))


def anthropic_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    cached = _int(raw.get("cache_read_input_tokens")) or 0
    fresh = (_int(raw.get("input_tokens")) or 0) + (_int(raw.get("cache_creation_input_tokens")) or 0)
    return Usage(input=fresh + cached, output=_int(raw.get("output_tokens")) or 0, cached=cached)


def openai_usage(raw: Any) -> Usage | None:
    """Responses (``input_tokens``...) or Chat Completions (``prompt_tokens``...) usage."""
    if not isinstance(raw, dict):
        return None
    if "input_tokens" in raw or "output_tokens" in raw:
        details = raw.get("input_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
        return Usage(_int(raw.get("input_tokens")) or 0, _int(raw.get("output_tokens")) or 0, cached or 0)
    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(_int(raw.get("prompt_tokens")) or 0, _int(raw.get("completion_tokens")) or 0, cached or 0)


def _event_end(buffer: bytearray) -> tuple[int, int] | None:
    """Where the first complete event ends (the blank line), and where the next one starts."""
    found = [(i, i + len(sep)) for sep in (b"\n\n", b"\r\n\r\n") if (i := buffer.find(sep)) >= 0]
    return min(found) if found else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
