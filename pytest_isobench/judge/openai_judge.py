"""``openai:MODEL``: an OpenAI (or any OpenAI-compatible endpoint's) model as judge.

Structured output is a strict JSON-schema ``response_format`` on ``chat.completions.create``: the one
route that OpenAI-compatible servers (vLLM, OpenRouter, llama.cpp, ...) share, and which leaves the
validation (and so the repair request) to us rather than to ``parse()``. Temperature 0 is sent; a
model that refuses it (reasoning models accept only the default) gets the request again without it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import openai

from .llm import ModelJudge, Reply
from .prompt import SYSTEM_PROMPT, TOOL_NAME, answer_schema


class OpenAIJudge(ModelJudge):
    """Chat Completions via the official SDK; key ``OPENAI_API_KEY``, base URL ``OPENAI_BASE_URL``."""

    prefix = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    key_hint = " (for a local endpoint that needs none, set it to any value)"

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._send_temperature = True

    def _client(self, api_key: str, base_url: str | None) -> AbstractContextManager[Any]:
        return openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=self.max_retries, timeout=self.timeout_s
        )

    def _ask(self, client: Any, messages: list[dict[str, Any]]) -> Reply:
        options: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *messages],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": TOOL_NAME, "schema": answer_schema(), "strict": True},
            },
        }
        if self._send_temperature:
            options["temperature"] = 0
        try:
            completion = client.chat.completions.create(**options)
        except openai.BadRequestError as exc:
            if not self._send_temperature or "temperature" not in str(exc).lower():
                raise
            self._send_temperature = False
            options.pop("temperature")
            completion = client.chat.completions.create(**options)
        usage = completion.usage
        reply = Reply(
            raw=None,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
        )
        if not completion.choices:
            reply.problem = "the response has no choices"
            return reply
        choice = completion.choices[0]
        message = choice.message
        content = message.content or ""
        reply.assistant = [{"role": "assistant", "content": content or "(no answer)"}]
        if getattr(message, "refusal", None):
            reply.problem = f"the model refused: {message.refusal}"
        elif not content.strip():
            reply.problem = f"empty answer (finish_reason={choice.finish_reason})"
        else:
            reply.raw = _strip_fence(content)
        return reply

    def _repair_turns(self, reply: Reply, request: str) -> list[dict[str, Any]]:
        return [*reply.assistant, {"role": "user", "content": f"{request}\nReply with the JSON object only."}]


def _strip_fence(text: str) -> str:
    """Some compatible servers wrap JSON in a Markdown fence despite the schema; accept that."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped
    return stripped.strip()
