"""The HTML report from a pytest session (``--isobench-html``, on the controller, also under xdist),
the pytest-html columns, and the page's content without a browser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.report.html import TaskInfo, build_context, render
from pytest_isobench.report.runs import load_sources
from pytest_isobench.report.svg import Bar, bar_chart, dot_plot
from report_runs import LONG_AGENT, UNICODE_TASK, two_runs

DIST_MODES = {"single": [], "xdist2": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}
FAST = ["--isobench-rounds=3", "--isobench-warmup=0", "-p", "no:cacheprovider"]


class Cells(HTMLParser):
    """The summary table's cells by ``data-key``, and every URL the page would load by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.loads: list[str] = []
        self._key: str | None = None
        self._in_summary = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._in_summary = found.get("id") == "summary-table"
        if self._in_summary and tag == "tr" and "data-agent" in found:
            self.rows.append({})
        if self._in_summary and found.get("data-key"):
            self._key = found["data-key"]
        for name in ("src", "srcset", "poster", "data"):
            if found.get(name):
                self.loads.append(str(found[name]))
        if tag == "link" and found.get("href"):
            self.loads.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._key = None
        if tag == "table":
            self._in_summary = False

    def handle_data(self, data: str) -> None:
        if self._key and self.rows:
            self.rows[-1][self._key] = self.rows[-1].get(self._key, "") + data.strip()


def parse(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


def summarize_json(*paths: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "summarize", *map(str, paths), "--format", "json"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return list(json.loads(result.stdout)["groups"])


def shown(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def assert_page_matches_summarize(page: str, *paths: Path) -> None:
    rows = parse(page).rows
    groups = summarize_json(*paths)
    assert len(rows) == len(groups) > 0
    for row, group in zip(rows, groups, strict=True):
        assert row == {key: shown(group[key]) for key in row}


def test_isobench_html_written_by_the_controller(suite: pytest.Pytester) -> None:
    for mode, args in DIST_MODES.items():
        out = suite.path / f"{mode}.html"
        result = suite.runpytest("--isobench-agent=noop", *FAST, *args, f"--isobench-html={mode}.html")
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines([f"isobench: HTML report *{mode}.html"])
        page = out.read_text(encoding="utf-8")
        run_id = re.search(r"run=(\S+)", result.stdout.str())
        assert run_id is not None
        run = suite.path / ".isobench" / "runs" / run_id.group(1)
        assert_page_matches_summarize(page, run)
        assert page.count('<tr data-task="') == 2, mode  # both tasks, whichever worker ran them
        assert "toy-one" in page and "worse" in page
    assert not list(suite.path.glob("gw*.html"))


def test_isobench_html_unwritable_path_is_reported(suite: pytest.Pytester) -> None:
    (suite.path / "taken").write_text("a file, not a folder")
    result = suite.runpytest("--isobench-agent=human", *FAST, "-k", "toy-one", "--isobench-html=taken/r.html")
    result.stdout.fnmatch_lines(["isobench: --isobench-html: could not write *taken/r.html*"])
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)  # the run itself is not failed


@pytest.mark.parametrize("dist", [[], ["-n", "2"]], ids=["single", "xdist2"])
def test_pytest_html_gets_isobench_columns_and_summary(suite: pytest.Pytester, dist: list[str]) -> None:
    pytest.importorskip("pytest_html", reason="pytest-html is optional; pip install 'pytest-isobench[test]'")
    result = suite.runpytest("--isobench-agent=noop", *FAST, *dist, "--html=ph.html", "--self-contained-html")
    result.assert_outcomes(failed=2)
    page = (suite.path / "ph.html").read_text(encoding="utf-8")
    assert "% vs human" in page and 'data-column-type="isobench-quadrant"' in page
    # rows live in pytest-html's data blob, HTML-escaped: the cells are there with their values
    assert len(re.findall(r"col-isobench-verdict\S{0,12}?(?:>|&gt;)worse", page)) == 2, "no verdict cells"
    assert len(re.findall(r"col-isobench-quadrant\S{0,12}?(?:>|&gt;)unscored", page)) == 2
    assert "ISO-Bench</h2>" in page and "hard%" in page


def test_collect_only_writes_no_report(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=noop", "--collect-only", "--isobench-html=r.html")
    assert result.ret == pytest.ExitCode.OK
    assert not (suite.path / "r.html").exists()


def test_without_pytest_html_the_plugin_runs(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-k", "toy-one", "-p", "no:html")
    result.assert_outcomes(passed=1)


def test_page_content_without_a_browser(tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    out = tmp_path / "r.html"
    page_data = build_context(load_sources([run_a, run_b]), output=out)
    page = render(page_data)
    cells = parse(page)
    assert cells.loads == []  # no image, stylesheet, script or frame from anywhere
    assert not re.search(r"<script[^>]+src=", page) and "@import" not in page
    assert_page_matches_summarize(page, run_a, run_b)
    assert page_data.columns == ["alpha", LONG_AGENT]
    task = next(t for t in page_data.tasks if t["id"] == "sglang-only-a")
    assert [c["verdict"] for c in task["cells"]] == ["beats", "missing"]
    assert any(t["id"] == UNICODE_TASK for t in page_data.tasks) and UNICODE_TASK in page
    assert "&lt;b&gt;select&lt;/b&gt;" in page  # a judge's rationale is text, never markup
    error = next(t for t in page_data.tasks if t["id"] == "vllm-fff")["cells"][0]
    assert error["verdict"] == "error" and "SandboxError: disk full" in page
    assert page_data.filters["verdict"] == ["beats", "similar", "worse", "failed", "error", "missing"]
    cells = {(t["id"], c["column"]): c for t in page_data.tasks for c in t["cells"]}
    flagged = cells[("vllm-ccc", "alpha")]["flags"]
    assert "patch changed benchmark files: benchmarks/benchmark_latency.py" in flagged
    assert "workload differs from the human's: completed 16 -> 8" in flagged
    assert cells[("vllm-bbb", "alpha")]["inconclusive"] and "inconclusive after 8 rounds: noise ±3 %" in page
    spent = cells[("vllm-aaa", LONG_AGENT)]
    assert (spent["stop_reason"], spent["turns"], spent["cost_usd"]) == ("time_budget", 12, 0.25)
    assert "time_budget, 12 turns, tokens 1000 in / 200 out, $0.2500" in page
    assert cells[("vllm-aaa", "alpha")]["correctness"] == "pass"
    assert [j["bottleneck"] for j in cells[("vllm-aaa", "alpha")]["judges"]] == ["same_target"]
    assert [name for name, _ in cells[("vllm-aaa", "alpha")]["links"]] == [
        "judge.json",
        "outcome.json",
        "patch.diff",
    ]
    assert len(page_data.tasks[0]["charts"]) >= 3  # gain vs baseline, vs human, rounds per agent
    assert len(page.encode()) < 400_000


def test_charts_have_text_alternatives() -> None:
    chart = str(bar_chart("gain", [Bar("human", 40.0, (35.0, 45.0)), Bar("agent", None)], band=5.0))
    assert chart.startswith('<svg class="chart" role="img"')
    assert "<title>gain</title>" in chart
    assert "human: +40.0 % (interval +35.0 % to +45.0 %); agent: not measured; dashed lines at ±5 %" in chart
    assert "<rect" in chart and "whisker" in chart
    dots = str(dot_plot("rounds <x>", [("baseline", [1.0, 2.0, 3.0]), ("agent", [])]))
    assert "<title>rounds &lt;x&gt;</title>" in dots and dots.count("<circle") == 3
    assert "baseline: 3 rounds from 1 to 3, median 2; agent: no rounds" in dots
    assert str(dot_plot("none", [])) == ""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_human_patch_from_a_cloned_task_repository(tmp_path: Path) -> None:
    """A git task (no patch file): the human change comes from the repository the cache already holds."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "engine.py").write_text("def step():\n    return sorted(range(9))\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "base")
    base = git(work, "rev-parse", "HEAD").strip()
    (work / "engine.py").write_text("def step():\n    return list(range(9))  # already sorted\n")
    git(work, "commit", "-qam", "human")
    human = git(work, "rev-parse", "HEAD").strip()
    cache = tmp_path / "cache"
    (cache / "repos").mkdir(parents=True)
    (cache / "repos" / "unrelated.git").mkdir()  # not a repository: skipped
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(cache / "repos" / "engine-1234.git")], check=True
    )
    run_a, _ = two_runs(tmp_path)
    info = TaskInfo("vllm-aaa", "vllm", title="Skip the sort", commits=(base, human))
    page = build_context(load_sources([run_a]), {"vllm-aaa": info}, cache_dir=cache)
    task = next(t for t in page.tasks if t["id"] == "vllm-aaa")
    assert ("add", "+    return list(range(9))  # already sorted") in task["human_patch"]
    assert ("del", "-    return sorted(range(9))") in task["human_patch"]
    other = TaskInfo("vllm-aaa", "vllm", commits=("0" * 40, human))  # a commit the cache lacks
    page = build_context(load_sources([run_a]), {"vllm-aaa": other}, cache_dir=cache)
    assert next(t for t in page.tasks if t["id"] == "vllm-aaa")["human_patch"] is None
    assert "not available" in render(page)


def test_secrets_never_reach_the_page(tmp_path: Path) -> None:
    run_a, _ = two_runs(tmp_path)
    secret = "very-secret-value-0123456789"
    (run_a / "vllm-aaa" / "alpha" / "patch.diff").write_text(
        f"+KEY = '{secret}'\n+other = 'sk-ant-abcdefghijklmnopqrstuvwx'\n"
    )
    out = tmp_path / "r.html"
    result = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "report", str(run_a), "-o", str(out)],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "MY_SERVICE_API_KEY": secret},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert secret not in page and "sk-ant-abcdef" not in page
    assert "[redacted MY_SERVICE_API_KEY]" in page
