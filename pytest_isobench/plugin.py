"""pytest-isobench hook implementations. Each hook only delegates; the logic lives in the modules."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from . import hookspecs, secrets, session
from .collect import task_params
from .executors import plugin as executors
from .keys import CATALOG_KEY, SETTINGS_KEY
from .options import add_options, env_help_lines
from .report import hooks as report_hooks

pytest_plugins = ["pytest_isobench.fixtures"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register ``pytest_isobench_agents`` and ``pytest_isobench_sandboxes`` for conftest files."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--isobench-*`` options and their ini twins."""
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    """After pytest's ``--help``, the environment variables the plugin reads."""
    result = yield
    if config.option.help:
        print("\n" + "\n".join(env_help_lines()) + "\n")
    return result


def pytest_configure(config: pytest.Config) -> None:
    """Every process: settings, catalog, markers, agent, executor; the controller also gets the collector."""
    session.configure(config)
    report_hooks.register(config)
    executors.configure(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister what pytest_configure registered; the executor cancels what is still submitted."""
    try:
        executors.unconfigure(config)
    finally:
        report_hooks.unregister(config)
        session.unconfigure(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The selected items' jobs go to the executor at the start of the run (ray submits them all)."""
    executors.submit_selected(session.config, session.items)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Effective settings and catalog size, like pytest-timeout's header line."""
    return session.header_lines(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per task file for every test that asks for ``isobench_task`` (workers or single process)."""
    if "isobench_task" in metafunc.fixturenames:
        config = metafunc.config
        params = task_params(config.stash[CATALOG_KEY], config.stash[SETTINGS_KEY].task_roots)
        metafunc.parametrize("isobench_task", params, indirect=True)


@pytest.hookimpl(wrapper=True, trylast=True)  # innermost: other plugins' wrappers see the redacted report
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Secrets never reach a report: failure text, captured output and properties are redacted."""
    report: pytest.TestReport = yield
    secrets.redact_report(report, item)
    return report
