"""Stash keys and the user-property key the outcome travels under."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .agents.base import Agent
    from .executors.base import Executor
    from .options import Settings
    from .report import RunCollector
    from .sandbox.base import SandboxFactory
    from .tasks import CatalogEntry

WIRE_KEY = "isobench"
"""``item.user_properties`` entry ``("isobench", {...})``: the outcome as builtins (crosses xdist)."""
WORKERINPUT_RUN_ID = "isobench_run_id"

SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
CATALOG_KEY: pytest.StashKey[list[CatalogEntry]] = pytest.StashKey()
AGENT_KEY: pytest.StashKey[Agent | None] = pytest.StashKey()
SANDBOX_KEY: pytest.StashKey[SandboxFactory] = pytest.StashKey()
RUN_ID_KEY: pytest.StashKey[str] = pytest.StashKey()
COLLECTOR_KEY: pytest.StashKey[RunCollector] = pytest.StashKey()
EXTRA_JUDGES_KEY: pytest.StashKey[dict[str, Any]] = pytest.StashKey()
EXECUTOR_KEY: pytest.StashKey[Executor] = pytest.StashKey()
