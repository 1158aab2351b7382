"""How one attempt's agent reaches its model: through the gateway (default) or directly (``bridge``).

:class:`ModelAccess` holds the variables the providers' SDKs and the agent CLIs read
(``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ...): through
the gateway, every provider's base URL is the gateway's ``/<provider>`` and every key the attempt's
token; directly, they are this environment's own (the real keys: the opt-out).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .ledger import Ledger
from .upstreams import PROVIDERS

# Agent-network modes (``--isobench-agent-network``); ``auto`` resolves per agent.
NETWORK_MODES = ("auto", "gateway", "none", "bridge")


@dataclass(frozen=True)
class ModelAccess:
    mode: str  # "gateway" or "direct"
    variables: Mapping[str, str] = field(default_factory=dict)
    ledger: Ledger | None = None

    def url(self, provider: str) -> str:
        """The provider's base URL as the agent must use it."""
        spec = PROVIDERS[provider]
        return self.variables.get(spec.url_var) or spec.default_url

    def key(self, provider: str) -> str | None:
        """The key the agent presents to the provider (the attempt's token through the gateway)."""
        spec = PROVIDERS[provider]
        return next((self.variables[v] for v in spec.key_vars if self.variables.get(v)), None)

    def provider_env(self, provider: str) -> dict[str, str]:
        """The variables of one provider (its base URL and key variables that are set)."""
        spec = PROVIDERS[provider]
        names = (spec.url_var, *spec.key_vars)
        return {name: self.variables[name] for name in names if self.variables.get(name)}


def gateway_access(base_url: str, ledger: Ledger) -> ModelAccess:
    """Every provider through the gateway at ``base_url`` (as the agent reaches it), keyed by the token."""
    variables = {}
    for name, spec in PROVIDERS.items():
        variables[spec.url_var] = f"{base_url.rstrip('/')}/{name}"
        variables[spec.key_vars[0]] = ledger.token
    return ModelAccess("gateway", variables, ledger)


def direct_access(env: Mapping[str, str] | None = None) -> ModelAccess:
    """The providers' real addresses and keys from ``env`` (default: this environment, read when used)."""
    return ModelAccess("direct", os.environ if env is None else env)


def resolve_network(mode: str, agent: Any) -> str:
    """``auto``: the gateway for agents that call a model (``calls_model``), no network for the others."""
    if mode != "auto":
        return mode
    return "gateway" if getattr(agent, "calls_model", False) else "none"


def account(info: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    """Put the gateway's figures into an attempt's ``agent_run``: tokens and cost from the gateway,
    the CLI's own figures kept beside them (``cli_tokens``, ``cli_cost_usd``), and the stop reason
    ``budget`` when a cap stopped it."""
    summary = ledger.summary()
    if info.get("tokens") is not None:
        info["cli_tokens"] = info["tokens"]
    if info.get("cost_usd") is not None and info.get("cost_source") == "cli":
        info["cli_cost_usd"] = info["cost_usd"]
    info["tokens"] = summary["tokens"]
    info["cost_usd"] = summary["cost_usd"]
    info["cost_source"] = "gateway" if summary["cost_usd"] is not None else None
    info["gateway"] = {k: v for k, v in summary.items() if k not in ("tokens", "cost_usd")}
    if summary["stop"] == "budget":
        info["stop_reason"] = "budget"
        info.pop("error", None)
    return info
