"""The model providers the gateway relays to, and the endpoints an agent may call on them.

Each provider's real address and key come from this (the harness's) environment, under the names its
SDKs use: ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``, sent as a bearer
token), ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, ``OPENROUTER_BASE_URL`` and ``OPENROUTER_API_KEY``.
Without a base URL the provider's own is used. The agent sees neither: it gets
``<gateway>/<provider>`` as its base URL and a per-attempt token as its key.

Only model calls pass: an agent holding the gateway's address cannot use the real key for anything
else (files, batches, fine-tuning, admin).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str  # the path prefix at the gateway: <gateway>/<name>/...
    wire: str  # "anthropic" or "openai"
    url_var: str
    key_vars: tuple[str, ...]  # the first one set is used
    default_url: str


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", "openai", "OPENAI_BASE_URL", ("OPENAI_API_KEY",), "https://api.openai.com/v1"),
        Provider(
            "anthropic",
            "anthropic",
            "ANTHROPIC_BASE_URL",
            ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
            "https://api.anthropic.com",
        ),
        Provider(
            "openrouter",
            "openai",
            "OPENROUTER_BASE_URL",
            ("OPENROUTER_API_KEY",),
            "https://openrouter.ai/api/v1",
        ),
    )
}

# (wire, method, path under the provider's base URL) -> the API's name in model_calls.jsonl
ENDPOINTS: dict[tuple[str, str], list[tuple[re.Pattern[str], str]]] = {
    ("anthropic", "POST"): [
        (re.compile(r"v1/messages"), "messages"),
        (re.compile(r"v1/messages/count_tokens"), "count_tokens"),
    ],
    ("openai", "POST"): [
        (re.compile(r"responses"), "responses"),
        (re.compile(r"chat/completions"), "chat_completions"),
    ],
    ("openai", "GET"): [(re.compile(r"models(/[A-Za-z0-9._:/-]+)?"), "models")],
}


@dataclass(frozen=True)
class Upstream:
    """One provider as the gateway reaches it: where, and the header that carries the real key."""

    provider: Provider
    base_url: str
    auth: tuple[str, str] | None  # (header, value); None: no key here (requests go without one)

    def url(self, rest: str) -> str:
        return f"{self.base_url.rstrip('/')}/{rest.lstrip('/')}"


def upstreams_from_env(env: Mapping[str, str] | None = None) -> dict[str, Upstream]:
    """Every provider, with its address and key from ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    found = {}
    for provider in PROVIDERS.values():
        base = (env.get(provider.url_var) or "").strip() or provider.default_url
        auth = None
        for var in provider.key_vars:
            if value := (env.get(var) or "").strip():
                bearer = provider.wire == "openai" or var.endswith("AUTH_TOKEN")
                auth = ("Authorization", f"Bearer {value}") if bearer else ("x-api-key", value)
                break
        found[provider.name] = Upstream(provider, base, auth)
    return found


def endpoint(wire: str, method: str, rest: str) -> str | None:
    """The API a request calls, or None when the gateway does not relay it."""
    for pattern, name in ENDPOINTS.get((wire, method), []):
        if pattern.fullmatch(rest.strip("/")):
            return name
    return None
