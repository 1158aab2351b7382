"""The report plugins the controller registers: the HTML page at session end, and pytest-html columns.

``register`` is called from ``pytest_configure``: on the controller only (never on a pytest-xdist
worker), ``HtmlReport`` when ``--isobench-html`` is given, ``PytestHtmlColumns`` when pytest-html is
loaded (it stays optional: its hooks exist only then).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest

from ..keys import CATALOG_KEY, COLLECTOR_KEY, RUN_ID_KEY, SETTINGS_KEY, WIRE_KEY
from ..results import OUTCOMES_FILE, OutcomesFileError, read_outcomes
from ..tasks import LoadedTask
from .runs import Source

HTML_PLUGIN = "isobench-html"
PYTEST_HTML_PLUGIN = "isobench-pytest-html"


def register(config: pytest.Config) -> None:
    """Controller: the HTML writer (with ``--isobench-html``) and the pytest-html columns (if loaded)."""
    if hasattr(config, "workerinput") or COLLECTOR_KEY not in config.stash:
        return
    settings = config.stash[SETTINGS_KEY]
    if settings.html is not None and not config.option.collectonly:
        config.pluginmanager.register(HtmlReport(settings.html), HTML_PLUGIN)
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(PytestHtmlColumns(), PYTEST_HTML_PLUGIN)


def unregister(config: pytest.Config) -> None:
    """Undo ``register`` (pytest_unconfigure)."""
    for name in (HTML_PLUGIN, PYTEST_HTML_PLUGIN):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


def run_source(config: pytest.Config) -> Source:
    """This run as the report reads it: the run directory's outcomes.jsonl (every worker's outcomes)."""
    collector = config.stash[COLLECTOR_KEY]
    run_dir: Path = collector.run_dir
    records: list[dict[str, Any]] = []
    if (run_dir / OUTCOMES_FILE).is_file():
        try:
            records = read_outcomes(run_dir)
        except OutcomesFileError:
            records = list(collector.records.values())
    else:
        records = list(collector.records.values())
    return Source(run_dir, config.stash[RUN_ID_KEY], records)


class HtmlReport:
    """Writes the HTML report when the session ends (the controller; workers have finished by then)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None
        self.written = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Render this run's page; trouble writing it is reported, it does not fail the run."""
        from .html import catalog_info, task_info, write_report

        config = session.config
        catalog = {e.id: task_info(e) for e in config.stash[CATALOG_KEY] if isinstance(e, LoadedTask)}
        if not catalog:
            catalog = catalog_info(config.stash[SETTINGS_KEY].task_roots)
        try:
            write_report(
                [run_source(config)], self.path, catalog, title=f"ISO-Bench run {config.stash[RUN_ID_KEY]}"
            )
            self.written = True
        except OSError as exc:
            self.problem = f"--isobench-html: could not write {self.path}: {exc}"

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Say where the page is (or why it is not there), after the run's summary."""
        if self.problem:
            terminalreporter.write_line(f"isobench: {self.problem}", red=True)
        elif self.written:
            terminalreporter.write_line(f"isobench: HTML report {self.path}")


COLUMNS = (("verdict", "verdict"), ("pct", "% vs human"), ("quadrant", "quadrant"))


class PytestHtmlColumns:
    """pytest-html: verdict, % vs human and quadrant columns, and the ISO-Bench summary above the table."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """After the test's name: verdict, % vs human, quadrant."""
        for key, title in reversed(COLUMNS):
            cells.insert(
                2, f'<th class="sortable" data-column-type="isobench-{key}">{html.escape(title)}</th>'
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """The outcome's verdict, percentage and quadrant (empty for a test that is not a task)."""
        outcome = next((v for k, v in report.user_properties if k == WIRE_KEY and isinstance(v, dict)), None)
        values = _row_values(outcome)
        for key, _ in reversed(COLUMNS):
            cells.insert(2, f'<td class="col-isobench-{key}">{html.escape(values[key])}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """The paper's table, as the terminal shows it, above pytest-html's results."""
        from ..scoring import render_table

        collector = session.config.stash.get(COLLECTOR_KEY, None)
        if collector is None:
            return
        groups = collector.summary()["groups"]
        if groups:
            table = "\n".join(render_table(groups))
            prefix.append(f'<h2>ISO-Bench</h2><pre class="isobench-summary">{html.escape(table)}</pre>')


def _row_values(outcome: dict[str, Any] | None) -> dict[str, str]:
    if outcome is None:
        return {"verdict": "", "pct": "", "quadrant": ""}
    verdict = "error" if outcome.get("status") == "error" else str(outcome.get("hard") or "")
    pct = outcome.get("hard_pct")
    return {
        "verdict": verdict,
        "pct": "" if pct is None else f"{pct:+.1f}",
        "quadrant": str(outcome.get("quadrant") or ""),
    }
