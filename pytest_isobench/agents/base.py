"""The Agent protocol and what an agent gets and returns (the registry is in ``registry.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..sandbox.base import Sandbox
from ..tasks import Task

if TYPE_CHECKING:
    from ..gateway.access import ModelAccess


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
    # Files the agent asked for (``tools()``), as paths valid where it runs (the docker backend bakes
    # them into the agent's image); name -> path.
    tools: Mapping[str, str] = field(default_factory=dict)
    # How the agent reaches its model for this attempt (None: it has none): the base URLs and keys
    # (through the gateway: the attempt's token) its SDK or CLI reads; see pytest_isobench.gateway.
    model_access: ModelAccess | None = None


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
