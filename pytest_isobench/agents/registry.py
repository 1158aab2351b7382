"""The agent registry: the built-in agents, those a conftest.py adds, and ``--isobench-agent`` parsing."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from .base import Agent, AgentFactory


def builtin_agents() -> dict[str, AgentFactory]:
    """The agents that ship with the plugin."""
    from .builtin import CommandAgent, HumanAgent, NoopAgent, ReplayAgent
    from .claude_code import ClaudeCode
    from .codex import Codex
    from .trae import Trae

    return {
        "human": HumanAgent.create,
        "noop": NoopAgent.create,
        "replay": ReplayAgent.create,
        "command": CommandAgent.create,
        "claude-code": lambda arg: ClaudeCode.create("claude-code", arg),
        "codex": lambda arg: Codex.create("codex", arg),
        "trae": lambda arg: Trae.create("trae", arg),
        "trae-gpt5": lambda arg: Trae.preset("trae-gpt5", "openai/gpt-5", arg),
        "trae-sonnet45": lambda arg: Trae.preset("trae-sonnet45", "anthropic/claude-sonnet-4-5", arg),
    }


def agent_registry(extra: list[Mapping[str, AgentFactory]]) -> dict[str, AgentFactory]:
    """Built-ins plus those ``pytest_isobench_agents`` hook implementations return."""
    registry = builtin_agents()
    for mapping in extra:
        registry.update(mapping)
    return registry


USAGE_FORMS = {
    "replay": "replay:PATH",
    "command": "command:SHELL",
    "claude-code": "claude-code[:MODEL]",
    "codex": "codex[:MODEL]",
    "trae": "trae:PROVIDER/MODEL",
}


def build_agent(spec: str, registry: Mapping[str, AgentFactory]) -> Agent:
    """The agent ``--isobench-agent`` names; an unknown name is a usage error listing the known ones."""
    name, sep, arg = spec.partition(":")
    if spec in registry:  # a registered name may itself contain a colon
        name, arg, sep = spec, "", ""
    factory = registry.get(name)
    if factory is None:
        known = ", ".join(USAGE_FORMS.get(n, n) for n in sorted(registry))
        raise pytest.UsageError(f"--isobench-agent: unknown agent {spec!r}; known agents: {known}")
    try:
        return factory(arg if sep else None)
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(f"--isobench-agent={spec}: {exc}") from None
