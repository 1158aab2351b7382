"""The HTML report in a real headless Chromium (Playwright's Python package driving the system's
``chromium``): nothing leaves the page, its numbers equal ``summarize --format json``, filters and
sorting work, and a screenshot is kept as a test artifact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.scoring import TABLE_COLUMNS
from report_runs import LONG_AGENT, LONG_TASK, UNICODE_TASK, two_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright: pip install 'pytest-isobench[test]'"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: the browser tests drive the system's Chromium (apt-get install chromium;"
    " .ci/run installs it where it can)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield instance
        instance.close()


class OfflinePage:
    """A page whose every request is checked: file: and data: only; anything else is aborted, recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.blocked: list[str] = []
        self.loaded: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.goto(path.resolve().as_uri())

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            self.loaded.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


def summarize_json(*paths: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "summarize", *map(str, paths), "--format", "json"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(result.stdout)


def cell_text(value: Any) -> str:
    """How the page writes a summary number (the template's ``num`` filter)."""
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def page_groups(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#summary-table tbody tr",
        "rows => rows.map(r => Object.fromEntries([...r.querySelectorAll('[data-key]')]"
        ".map(c => [c.dataset.key, c.textContent.trim()])))",
    )


def visible_tasks(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#grid-table tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.task)"
    )


def check_numbers(page: Any, *paths: Path) -> None:
    """Every summary cell on the page equals ``summarize --format json`` over the same runs."""
    expected = summarize_json(*paths)["groups"]
    shown = page_groups(page)
    assert len(shown) == len(expected) > 0
    for row, group in zip(shown, expected, strict=True):
        assert row == {key: cell_text(group[key]) for key in row}, (row, group)
        assert set(row) == {key for key, _, _ in TABLE_COLUMNS}


def report(tmp_path: Path, *runs: Path, name: str = "report.html") -> Path:
    out = tmp_path / name
    subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "report", *map(str, runs), "-o", str(out)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out


def test_synthetic_runs_render_offline_with_summarize_numbers(browser: Any, tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    view = OfflinePage(browser, report(tmp_path, run_a, run_b))
    page = view.page
    assert view.blocked == [] and view.errors == []
    assert all(url.startswith("file:") for url in view.loaded)
    check_numbers(page, run_a, run_b)
    columns = page.eval_on_selector_all(
        "#grid-table thead th[data-column]", "ths => ths.map(t => t.dataset.column)"
    )
    assert columns == ["alpha", LONG_AGENT]
    # every task of either run is a row; a task of one run is "missing" in the other's column
    assert len(visible_tasks(page)) == 10
    cell = page.locator(f'#grid-table tr[data-task="sglang-only-a"] td[data-column="{LONG_AGENT}"]')
    assert cell.get_attribute("data-verdict") == "missing"
    assert page.locator(f'#grid-table tr[data-task="{UNICODE_TASK}"]').count() == 1
    assert page.locator(f'#grid-table tr[data-task="{LONG_TASK}"]').count() == 1
    # the grid's verdicts per column equal the run's records
    for run, column in ((run_a, "alpha"), (run_b, LONG_AGENT)):
        records = [json.loads(line) for line in (run / "outcomes.jsonl").read_text().splitlines()]
        shown = dict(page.eval_on_selector_all(
            f'#grid-table td[data-column="{column}"]',
            "tds => tds.map(td => [td.parentElement.dataset.task, td.dataset.verdict])",
        ))  # fmt: skip
        for record in records:
            verdict = "error" if record["status"] == "error" else record["hard"]
            assert shown[record["task_id"]] == verdict
    # a rationale with markup stays text; no script from the data ran (no dialog, no error)
    assert "<script>alert(1)</script>" in page.locator(f'section.task[data-task="{LONG_TASK}"]').inner_text()
    assert page.locator("section.task table.judges script").count() == 0
    # charts carry a text alternative
    desc = page.locator("svg.chart desc").first.text_content()
    assert desc and "%" in desc
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_filters_and_sorting(browser: Any, tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    page = OfflinePage(browser, report(tmp_path, run_a, run_b)).page
    page.select_option("#filter-verdict", "missing")
    assert sorted(visible_tasks(page)) == ["sglang-only-a", "sglang-only-b"]
    assert page.locator("#shown").text_content() == "2 of 10 tasks shown"
    page.select_option("#filter-verdict", "error")
    assert visible_tasks(page) == ["vllm-fff"]
    page.select_option("#filter-verdict", "")
    page.select_option("#filter-repo", "sglang")
    assert sorted(visible_tasks(page)) == sorted([LONG_TASK, "sglang-only-a", "sglang-only-b"])
    page.select_option("#filter-repo", "")
    page.fill("#filter-text", "ünïcödé")
    assert visible_tasks(page) == [UNICODE_TASK]
    page.fill("#filter-text", "")
    assert len(visible_tasks(page)) == 10
    # sort by alpha's column: beats first (higher % first), missing last
    page.click('#grid-table thead th[data-column="alpha"]')
    order = visible_tasks(page)
    assert order[:3] == ["sglang-only-a", "vllm-aaa", "vllm-eee"] and order[-1] == "sglang-only-b"
    page.click('#grid-table thead th[data-column="alpha"]')
    assert visible_tasks(page)[0] == "sglang-only-b"
    page.screenshot(path=str(tmp_path / "sorted.png"))


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The human and the noop agent on the smoke tasks (real runs), the human's with ``--isobench-html``."""
    root = Path(__file__).resolve().parent.parent
    work = tmp_path_factory.mktemp("smoke")
    common = ["-m", "smoke", "-p", "no:cacheprovider", "-q", "--isobench-tasks", str(root / "tasks"),
              "--isobench-runs-dir", str(work / "runs"), "--isobench-cache-dir", str(work / "cache"),
              "--isobench-rounds=3", "--isobench-warmup=0", "--isobench-judge=overlap",
              str(root / "tasks")]  # fmt: skip
    for agent in ("human", "noop"):
        extra = [f"--isobench-html={work / 'human.html'}"] if agent == "human" else []
        subprocess.run(
            [sys.executable, "-m", "pytest", f"--isobench-agent={agent}", f"--isobench-run-id={agent}",
             *common, *extra],
            capture_output=True, text=True, check=False, timeout=1800, cwd=work,
        )  # fmt: skip
    return work / "runs" / "human", work / "runs" / "noop", work / "human.html"


def test_smoke_runs_side_by_side(browser: Any, smoke_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    human, noop, human_page = smoke_runs
    assert human_page.is_file(), "--isobench-html wrote no page"
    view = OfflinePage(browser, human_page)
    assert view.blocked == [] and view.errors == []
    check_numbers(view.page, human)
    both = report(tmp_path, human, noop, name="both.html")
    view = OfflinePage(browser, both)
    assert view.blocked == [] and view.errors == []
    check_numbers(view.page, human, noop)
    page = view.page
    columns = page.eval_on_selector_all(
        "#grid-table thead th[data-column]", "ths => ths.map(t => t.dataset.column)"
    )
    assert columns == ["human", "noop"]
    assert sorted(visible_tasks(page)) == ["smoke-latency", "smoke-serving", "smoke-throughput"]
    # the evidence: titles from the catalog, rounds as dots, the patches beside the human's
    section = page.locator("#task-smoke-latency")
    assert "Select the top-k candidates" in section.locator("h3").text_content()
    assert section.locator("svg.chart circle").count() >= 9  # 3 rounds x 3 variants, for each agent
    section.locator("details.patches summary").click()
    assert "heapq" in section.locator('pre.diff[aria-label="human patch"]').text_content()
    page.screenshot(path=str(tmp_path / "smoke.png"), full_page=True)
