"""Per-process setup behind ``pytest_configure``: settings, catalog, markers, agent, run id, collector."""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from typing import Any

import pytest

from . import secrets as redaction
from .agents.base import Agent
from .agents.registry import agent_registry, build_agent
from .collect import marker_lines
from .keys import (
    AGENT_KEY,
    CATALOG_KEY,
    COLLECTOR_KEY,
    EXTRA_JUDGES_KEY,
    RUN_ID_KEY,
    SANDBOX_KEY,
    SETTINGS_KEY,
    WORKERINPUT_RUN_ID,
)
from .options import Settings, resolve
from .progress import install as install_progress
from .progress import uninstall as uninstall_progress
from .report import RunCollector
from .sandbox import reaper
from .sandbox.base import sandbox_registry
from .tasks import BrokenTaskFile, LoadedTask, load_catalog


def is_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker (the same check pytest's junitxml uses)."""
    return hasattr(config, "workerinput")


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def configure_agent(agent: Agent, settings: Settings) -> None:
    """Give a CLI agent its options and let it find its CLI: a missing one is a usage error at start."""
    from .agents.cli import CliAgent, CliOptions

    if not isinstance(agent, CliAgent):
        return
    options = CliOptions(
        max_turns=settings.agent_max_turns,
        budget_usd=settings.agent_budget_usd,
        cli_paths=dict(settings.cli_paths),
        prices=settings.prices,
    )
    try:
        agent.configure(options)
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(f"--isobench-agent={settings.agent}: {exc}") from None


def configure(config: pytest.Config) -> None:
    """Resolve everything once per process; errors in options are usage errors."""
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    # SIGTERM runs the Ctrl-C cleanup; supervised commands leave records `cleanup` can act on.
    reaper.install(settings.cache_dir / reaper.RECORDS)
    redaction.configure(settings.redact)
    redaction.install_logging()
    catalog = load_catalog(settings.task_roots)
    config.stash[CATALOG_KEY] = catalog
    for line in marker_lines(catalog):
        config.addinivalue_line("markers", line)
    agents = agent_registry(config.hook.pytest_isobench_agents())
    agent = build_agent(settings.agent, agents) if settings.agent else None
    if agent is not None and not config.option.collectonly:  # listing tasks needs no CLI
        configure_agent(agent, settings)
    config.stash[AGENT_KEY] = agent
    sandboxes = sandbox_registry(config.hook.pytest_isobench_sandboxes())
    if settings.backend not in sandboxes:
        raise pytest.UsageError(
            f"--isobench-backend: unknown backend {settings.backend!r}; known: {', '.join(sorted(sandboxes))}"
        )
    config.stash[SANDBOX_KEY] = sandboxes[settings.backend]
    config.stash[EXTRA_JUDGES_KEY] = {
        k: v for m in config.hook.pytest_isobench_judges() for k, v in m.items()
    }
    if is_worker(config):
        workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
        config.stash[RUN_ID_KEY] = workerinput.get(WORKERINPUT_RUN_ID) or settings.run_id or new_run_id()
        return
    warn_unmatched_predictions(config)
    run_id = settings.run_id or new_run_id()
    config.stash[RUN_ID_KEY] = run_id
    tasks = {e.task.id: e.task.repo for e in catalog if not isinstance(e, BrokenTaskFile)}
    collector = RunCollector(run_id, settings.runs_dir / run_id, settings.agent, settings.hints, tasks)
    config.stash[COLLECTOR_KEY] = collector
    config.pluginmanager.register(collector, "isobench-collector")
    install_progress(config, settings.runs_dir / run_id)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "isobench-xdist")


class IsobenchWarning(UserWarning):
    """Something about the run's input a person should look at before trusting the results."""


def warn_unmatched_predictions(config: pytest.Config) -> None:
    """Controller, at start: a replay agent whose predictions name no selected task (by task id)."""
    check = getattr(config.stash[AGENT_KEY], "unmatched_predictions", None)
    if check is None:
        return
    task_ids = [entry.id for entry in config.stash[CATALOG_KEY] if isinstance(entry, LoadedTask)]
    message = check(task_ids)
    if message:
        config.issue_config_time_warning(IsobenchWarning(message), stacklevel=2)


def unconfigure(config: pytest.Config) -> None:
    try:
        end_sandbox_session(config)
        if "pytest_isobench.gateway.server" in sys.modules:  # started by a task that needed it
            sys.modules["pytest_isobench.gateway.server"].stop_shared_gateway()
    finally:
        if SETTINGS_KEY in config.stash:
            reaper.uninstall()
    uninstall_progress(config)
    if SETTINGS_KEY in config.stash:  # configure() got as far as installing it
        redaction.uninstall_logging()
    collector = config.stash.get(COLLECTOR_KEY, None)
    if collector is not None:
        config.pluginmanager.unregister(collector)
    xdist_hooks = config.pluginmanager.get_plugin("isobench-xdist")
    if xdist_hooks is not None:
        config.pluginmanager.unregister(xdist_hooks)


def end_sandbox_session(config: pytest.Config) -> None:
    """The controller, at the very end (also after Ctrl-C): the backend removes what the run left.

    A backend opts in with an ``end_session(run_id)`` callable on its factory (docker removes the
    run's labelled containers, whichever worker created them).
    """
    factory = config.stash.get(SANDBOX_KEY, None)
    end_session = getattr(factory, "end_session", None)
    if is_worker(config) or end_session is None or RUN_ID_KEY not in config.stash:
        return
    end_session(config.stash[RUN_ID_KEY])


class XdistHooks:
    """Registered only when pytest-xdist is loaded: hands the run id to every worker."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_RUN_ID] = node.config.stash[RUN_ID_KEY]


def header_lines(config: pytest.Config) -> list[str]:
    """The report header: effective settings and what the catalog holds."""
    settings = config.stash[SETTINGS_KEY]
    catalog = config.stash[CATALOG_KEY]
    broken = sum(isinstance(e, BrokenTaskFile) for e in catalog)
    roots = ", ".join(str(r) for r in settings.task_roots)
    return [
        f"isobench: agent={settings.agent or '(none)'} backend={settings.backend}"
        f" rounds={settings.rounds_text}"
        f" warmup={settings.warmup} time-budget={settings.time_budget_min:g}min hints={settings.hints}"
        f" judges={','.join(settings.judges) or '(none)'}"
        f" run={config.stash[RUN_ID_KEY]}",
        f"isobench: {len(catalog)} task file(s) from {roots}" + (f", {broken} broken" if broken else ""),
    ]
