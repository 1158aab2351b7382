"""What the Anthropic and OpenAI judges share: keys, the repair loop, usage and error reasons.

A model judge never raises for model or network trouble: a missing key, an HTTP error after the SDK's
bounded retries, a timeout or an answer that still does not validate after one repair request all
become a ``judge_error`` verdict whose reason names the cause (and never the key). Retries are the
SDK's own (``max_retries`` on the client: 408/409/429/5xx, connection errors and timeouts, exponential
backoff from 0.5 s capped at 8 s, honouring ``retry-after-ms``/``retry-after``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from pydantic import ValidationError

from .base import DEFAULT_JUDGE_RETRIES, DEFAULT_JUDGE_TIMEOUT_S, JudgeContext, SoftVerdict, Usage
from .prompt import PROMPT_VERSION, REPAIR_TEMPLATE, JudgeAnswer, answer_to_verdict, build_prompt
from .secrets import redact

DEFAULT_MAX_RETRIES = DEFAULT_JUDGE_RETRIES
DEFAULT_TIMEOUT_S = DEFAULT_JUDGE_TIMEOUT_S
DEFAULT_MAX_TOKENS = 2048
_MAX_REASON = 600
_RETRIED_STATUS = frozenset({408, 409, 429})


@dataclass
class Reply:
    """One model call: the structured answer (a dict, JSON text, or None), tokens, what went wrong,
    and the assistant turn to echo back in a repair request."""

    raw: object
    input_tokens: int = 0
    output_tokens: int = 0
    problem: str | None = None
    assistant: list[dict[str, Any]] = field(default_factory=list)
    tool_use_id: str | None = None


class ModelJudge(ABC):
    """Base of the SDK-backed judges; subclasses open a client, ask, and shape a repair turn."""

    prefix: ClassVar[str]
    key_env: ClassVar[str]
    base_url_env: ClassVar[str]
    key_hint: ClassVar[str] = ""
    cacheable = True
    prompt_version = PROMPT_VERSION

    def __init__(
        self,
        model: str,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if not model.strip():
            raise ValueError(f"{self.prefix} judge needs a model: {self.prefix}:MODEL")
        self.model = model.strip()
        self.name = f"{self.prefix}:{self.model}"
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens

    @classmethod
    def create(
        cls, arg: str | None, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_MAX_RETRIES
    ) -> Self:
        """Registry factory: ``arg`` is the model name; the limits go to the SDK client."""
        return cls(arg or "", timeout_s=timeout_s, max_retries=max_retries)

    @abstractmethod
    def _client(self, api_key: str, base_url: str | None) -> AbstractContextManager[Any]:
        """An SDK client with ``max_retries`` and ``timeout`` set."""

    @abstractmethod
    def _ask(self, client: Any, messages: list[dict[str, Any]]) -> Reply:
        """Send ``messages`` (the user turn first) and return the structured answer."""

    @abstractmethod
    def _repair_turns(self, reply: Reply, request: str) -> list[dict[str, Any]]:
        """The assistant's bad turn and the user turn asking for a corrected answer."""

    def judge(self, ctx: JudgeContext) -> SoftVerdict:
        api_key = os.environ.get(self.key_env, "").strip()
        if not api_key:
            return self._failed(
                f"{self.key_env} is not set: the {self.prefix} judge needs an API key{self.key_hint}"
            )
        base_url = os.environ.get(self.base_url_env, "").strip() or None
        messages: list[dict[str, Any]] = [{"role": "user", "content": build_prompt(ctx)}]
        usage = Usage()
        try:
            with self._client(api_key, base_url) as client:
                for attempt in (1, 2):
                    reply = self._ask(client, messages)
                    usage = Usage(
                        calls=usage.calls + 1,
                        input_tokens=usage.input_tokens + reply.input_tokens,
                        output_tokens=usage.output_tokens + reply.output_tokens,
                    )
                    answer, problem = (None, reply.problem) if reply.problem else _check(reply.raw)
                    if answer is not None:
                        return answer_to_verdict(answer, spec=self.name, order=ctx.order, usage=usage)
                    if attempt == 2:
                        reason = f"invalid answer after one repair request: {problem}"
                        return self._failed(reason, usage, api_key)
                    messages += self._repair_turns(reply, REPAIR_TEMPLATE.format(errors=problem))
        except Exception as exc:  # SDK, network and anything else: a judge never fails the task
            return self._failed(self._describe(exc, base_url), usage, api_key)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, reason: str, usage: Usage | None = None, api_key: str = "") -> SoftVerdict:
        text = redact(reason, [api_key] if api_key else [])
        if len(text) > _MAX_REASON:
            text = text[: _MAX_REASON - 3] + "..."
        return SoftVerdict.failed(self.name, text, usage=usage, prompt_version=self.prompt_version)

    def _describe(self, exc: Exception, base_url: str | None) -> str:
        """A short reason for an SDK exception, by duck typing so both SDKs' classes are covered."""
        kind = type(exc).__name__
        status = getattr(exc, "status_code", None)
        message = str(getattr(exc, "message", "") or exc)
        if isinstance(status, int):
            retried = status in _RETRIED_STATUS or status >= 500
            after = f" after {self.max_retries} retries" if retried else ""
            return f"{self.prefix} API returned HTTP {status}{after} ({kind}): {message}"
        if "Timeout" in kind:
            return (
                f"{self.prefix} API timed out ({self.timeout_s:g} s per attempt, {self.max_retries} retries)"
            )
        if "Connection" in kind:
            where = base_url or "the default endpoint"
            tries = f"after {self.max_retries} retries"
            return f"could not reach the {self.prefix} API at {where} {tries}: {message}"
        return f"{kind}: {message}"


def _check(raw: object) -> tuple[JudgeAnswer | None, str | None]:
    """The answer, or None and the first few validation errors on one line."""
    try:
        if isinstance(raw, str | bytes):
            return JudgeAnswer.model_validate_json(raw), None
        return JudgeAnswer.model_validate(raw), None
    except ValidationError as exc:
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        ]
        more = f" (+{exc.error_count() - 8} more)" if exc.error_count() > 8 else ""
        return None, "; ".join(parts) + more
