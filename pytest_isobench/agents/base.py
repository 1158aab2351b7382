"""The Agent protocol, what an agent gets and returns, and the agent registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from ..sandbox.base import Sandbox
from ..tasks import Task


@dataclass(frozen=True)
class SolveContext:
    """Everything an agent may use for one task."""

    task: Task
    workdir: Path
    prompt: str
    prompt_file: Path
    time_budget_s: float
    log_dir: Path
    sandbox: Sandbox
    # The human change (base..human). Only the oracle agent may use it; it is never in the prompt.
    oracle_patch: Callable[[], str]
    # How much the agent may add to its working copy and logs (None: no limit); see sandbox/disk.py.
    disk_limit_bytes: int | None = None


@dataclass(frozen=True)
class AgentRun:
    """How an agent's attempt ended.

    ``patch`` is set only by offline agents whose output *is* a patch (replay); for everyone else the
    harness computes the patch from the working copy.
    """

    returncode: int | None = 0
    timed_out: bool = False
    duration_s: float = 0.0
    patch: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Agent(Protocol):
    """Something that changes a working copy (or supplies a patch) for a task."""

    name: str

    def solve(self, ctx: SolveContext) -> AgentRun: ...


AgentFactory = Callable[[str | None], Agent]
"""Builds an agent from the part of ``--isobench-agent`` after ``name:`` (None when absent)."""


def builtin_agents() -> dict[str, AgentFactory]:
    """The agents that ship with the plugin."""
    from .builtin import CommandAgent, HumanAgent, NoopAgent, ReplayAgent

    return {
        "human": HumanAgent.create,
        "noop": NoopAgent.create,
        "replay": ReplayAgent.create,
        "command": CommandAgent.create,
    }


def agent_registry(extra: list[Mapping[str, AgentFactory]]) -> dict[str, AgentFactory]:
    """Built-ins plus those ``pytest_isobench_agents`` hook implementations return."""
    registry = builtin_agents()
    for mapping in extra:
        registry.update(mapping)
    return registry


USAGE_FORMS = {"replay": "replay:PATH", "command": "command:SHELL"}


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
