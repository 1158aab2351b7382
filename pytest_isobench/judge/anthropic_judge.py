"""``anthropic:MODEL``: a Claude model as judge, structured output through a forced tool call.

The forced tool (``tool_choice={"type": "tool", ...}``) works on every SDK and API version that has
tools, unlike the newer native structured outputs. A repair request answers the bad tool call with an
``is_error`` tool result, which is how the API expects a tool call to be rejected. Temperature 0 is
sent when the installed SDK still has the parameter (recent SDKs dropped it with the models that
reject it).
"""

from __future__ import annotations

import functools
import inspect
from contextlib import AbstractContextManager
from typing import Any

import anthropic

from .llm import ModelJudge, Reply
from .prompt import SYSTEM_PROMPT, TOOL_NAME, answer_schema

TOOL_DESCRIPTION = "Submit the comparison of the two patches."


@functools.cache
def _supports_temperature() -> bool:
    messages = getattr(anthropic.resources, "Messages", None)
    if messages is None:  # an SDK layout we do not know: older SDKs all had the parameter
        return True
    return "temperature" in inspect.signature(messages.create).parameters


class AnthropicJudge(ModelJudge):
    """Claude via the official SDK; key from ``ANTHROPIC_API_KEY``, base URL from ``ANTHROPIC_BASE_URL``."""

    prefix = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"

    def _client(self, api_key: str, base_url: str | None) -> AbstractContextManager[Any]:
        return anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=self.max_retries, timeout=self.timeout_s
        )

    def _ask(self, client: Any, messages: list[dict[str, Any]]) -> Reply:
        options: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": SYSTEM_PROMPT,
            "messages": messages,
            "tools": [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": answer_schema()}],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
        if _supports_temperature():
            options["temperature"] = 0
        response = client.messages.create(**options)
        usage = response.usage
        input_tokens = (
            (usage.input_tokens or 0)
            + (getattr(usage, "cache_creation_input_tokens", 0) or 0)
            + (getattr(usage, "cache_read_input_tokens", 0) or 0)
        )
        reply = Reply(raw=None, input_tokens=input_tokens, output_tokens=usage.output_tokens or 0)
        tool = next((b for b in response.content if b.type == "tool_use" and b.name == TOOL_NAME), None)
        if tool is None:
            text = " ".join(b.text for b in response.content if b.type == "text").strip()
            reply.problem = f"no {TOOL_NAME} tool call (stop_reason={response.stop_reason})"
            reply.assistant = [{"role": "assistant", "content": text or "(no answer)"}]
            return reply
        reply.raw = tool.input
        reply.tool_use_id = tool.id
        block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input}
        reply.assistant = [{"role": "assistant", "content": [block]}]
        return reply

    def _repair_turns(self, reply: Reply, request: str) -> list[dict[str, Any]]:
        if reply.tool_use_id is None:
            return [*reply.assistant, {"role": "user", "content": f"{request}\nCall the {TOOL_NAME} tool."}]
        result = {
            "type": "tool_result",
            "tool_use_id": reply.tool_use_id,
            "is_error": True,
            "content": request,
        }
        return [*reply.assistant, {"role": "user", "content": [result]}]
