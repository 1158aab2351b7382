"""`python -m pytest_isobench` summarize (several runs), compare, tasks and report: real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from report_runs import LONG_AGENT, LONG_TASK, UNICODE_TASK, two_runs, write_run

TASKS = Path(__file__).resolve().parent.parent / "tasks"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_isobench", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )


def as_json(*args: str) -> Any:
    result = cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_summarize_several_runs_one_row_per_agent(tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    both = as_json("summarize", str(run_a), str(run_b / "outcomes.jsonl"))
    rows = {(g["repo"], g["agent"]): g for g in both["groups"]}
    assert set(rows) == {("sglang", "alpha"), ("vllm", "alpha"), ("sglang", LONG_AGENT), ("vllm", LONG_AGENT)}
    # each run alone gives the same rows as in the combined table
    for run in (run_a, run_b):
        for group in as_json("summarize", str(run))["groups"]:
            assert rows[(group["repo"], group["agent"])] == group
    assert rows[("vllm", "alpha")]["error"] == 1 and rows[("vllm", "alpha")]["n"] == 7
    assert [a["agent"] for a in both["agents"]] == [LONG_AGENT]  # only it spent anything
    text = cli("summarize", str(run_a), str(run_b)).stdout
    assert "alpha" in text and "command-" in text  # the long name shortened, with its legend


def test_summarize_the_same_agent_in_two_runs_stays_apart(tmp_path: Path) -> None:
    first = write_run(tmp_path, "monday", "human", [("t1", "smoke", "similar", 1.0, None, {})])
    second = write_run(tmp_path, "tuesday", "human", [("t1", "smoke", "worse", -9.0, None, {})])
    groups = as_json("summarize", str(first), str(second))["groups"]
    assert [(g["agent"], g["similar"], g["worse"]) for g in groups] == [
        ("human@monday", 1, 0),
        ("human@tuesday", 0, 1),
    ]
    single = as_json("summarize", str(first))["groups"]
    assert [g["agent"] for g in single] == ["human"]  # one run: names as recorded


def test_summarize_names_the_bad_path(tmp_path: Path) -> None:
    run_a, _ = two_runs(tmp_path)
    result = cli("summarize", str(run_a), str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere: no outcomes.jsonl here" in result.stderr


def test_compare_lists_changed_tasks_and_rate_changes(tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    result = as_json("compare", str(run_a), str(run_b))
    changed = {c["task_id"]: (c["a"]["hard"], c["a"]["quadrant"], c["b"]["hard"], c["b"]["quadrant"])
               for c in result["changes"]}  # fmt: skip
    assert changed == {
        "vllm-aaa": ("beats", "Q1", "worse", "Q2"),
        "vllm-ccc": ("worse", "Q2", "beats", "Q1"),
        "vllm-ddd": ("failed", "Q4", "failed", "unscored"),
        "vllm-fff": ("error", "unscored", "similar", "Q1"),
        LONG_TASK: ("worse", "Q2", "failed", "Q4"),
        "sglang-only-a": ("beats", "Q1", "missing", "missing"),
        "sglang-only-b": ("missing", "missing", "similar", "Q1"),
    }
    (rate,) = result["rates"]
    # A: 9 tasks, hard pass aaa bbb eee unicode only-a = 5; Q1 aaa unicode only-a = 3
    # B: 9 tasks, hard pass bbb ccc eee fff unicode only-b = 6; Q1 ccc fff unicode only-b = 4
    assert (rate["n_a"], rate["n_b"]) == (9, 9)
    assert rate["hard_success_pct_a"] == 55.6 and rate["hard_success_pct_b"] == 66.7
    assert rate["hard_success_change"] == 11.1
    assert rate["true_success_pct_a"] == 33.3 and rate["true_success_pct_b"] == 44.4
    assert rate["true_success_change"] == 11.1
    text = cli("compare", str(run_a), str(run_b))
    assert text.returncode == 0, text.stderr
    assert "7 task(s) with a different verdict or quadrant:" in text.stdout
    lines = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines() if line.startswith("  ")}
    assert lines["sglang-only-a"] == ["beats/Q1", "->", "missing/missing"]
    assert lines["vllm-fff"] == ["error/unscored", "->", "similar/Q1"]
    assert "hard % 55.6 (n=9) -> 66.7 (n=9)  change +11.1" in text.stdout
    assert UNICODE_TASK not in text.stdout  # the same in both runs


def test_compare_runs_of_several_agents_without_one_in_common(tmp_path: Path) -> None:
    both = tmp_path / "both"
    write_run(tmp_path, "both", "alpha", [("t1", "r", "beats", 9.0, None, {})])
    write_run(tmp_path, "both", "beta", [("t1", "r", "beats", 9.0, None, {})])
    write_run(tmp_path, "other", "gamma", [("t1", "r", "beats", 9.0, None, {})])
    write_run(tmp_path, "other", "delta", [("t1", "r", "beats", 9.0, None, {})])
    result = cli("compare", str(both), str(tmp_path / "other"))
    assert result.returncode == 2 and "share no agent" in result.stderr


def test_tasks_lists_the_same_selection_as_pytest() -> None:
    smoke = as_json("tasks", "--tasks", str(TASKS), "-m", "smoke")["tasks"]
    assert [t["id"] for t in smoke] == ["smoke-latency", "smoke-serving", "smoke-throughput"]
    assert {(t["mode"], t["metric"], t["gpus"], t["status"]) for t in smoke} >= {
        ("latency", "avg_latency", 0, "ready")
    }
    sglang = as_json("tasks", "--tasks", str(TASKS), "-k", "sglang and not smoke")["tasks"]
    assert len(sglang) == 15 and all(t["repo"] == "sglang" for t in sglang)
    serving = as_json("tasks", "--tasks", str(TASKS), "-m", "vllm and serving")["tasks"]
    assert serving and all(t["repo"] == "vllm" and t["mode"] == "serving" for t in serving)
    # pytest's own collection selects the same ids
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", str(TASKS), "--collect-only", "-q", "-m", "vllm and serving",
         "-p", "no:cacheprovider", "--isobench-tasks", str(TASKS)],
        capture_output=True, text=True, check=False, cwd=TASKS.parent, timeout=300,
    )  # fmt: skip
    ids = sorted(line.split("[", 1)[1].rstrip("]") for line in collected.stdout.splitlines() if "[" in line)
    assert ids == sorted(t["id"] for t in serving), collected.stdout[-2000:]
    text = cli("tasks", "--tasks", str(TASKS), "-m", "smoke").stdout.splitlines()
    assert text[0].split() == ["id", "repo", "mode", "metric", "model", "gpus", "status"]
    assert text[1].split() == ["smoke-latency", "smoke", "latency", "avg_latency", "-", "0", "ready"]
    assert text[-1] == "3 task(s)"


@pytest.mark.parametrize(("args", "words"), [
    (["-k", "vllm and ("], "bad selection expression"),
    (["--tasks", "no/such/root"], "task root no/such/root does not exist"),
])  # fmt: skip
def test_tasks_bad_input_is_a_clear_error(args: list[str], words: str) -> None:
    result = cli("tasks", "--tasks", str(TASKS), *args) if "--tasks" not in args else cli("tasks", *args)
    assert result.returncode == 2 and words in result.stderr


def test_report_writes_one_page_for_several_runs(tmp_path: Path) -> None:
    run_a, run_b = two_runs(tmp_path)
    real = write_run(tmp_path, "run-c", "gamma", [("vllm-015069b0", "vllm", "beats", 9.0, "same_target", {})])
    out = tmp_path / "out" / "both.html"
    result = cli("report", str(run_a), str(run_b), str(real), "-o", str(out), "--tasks", str(TASKS))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out} (19 outcomes from 3 run(s))" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert page.count('<tr data-task="') == 11  # the union of the runs' tasks
    # a catalog task: its title, mode and pull request from the task file
    assert "Optimize the Qwen3_ReasoningParser extract_reasoning_content" in page
    assert (
        '<a href="https://github.com/vllm-project/vllm/pull/17515" rel="noreferrer">pull request</a>' in page
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert '<a href="../run-a/vllm-aaa/alpha/patch.diff">patch.diff</a>' in page


@pytest.mark.parametrize("target", ["folder", "missing"])
def test_report_bad_paths_are_named(tmp_path: Path, target: str) -> None:
    run_a, _ = two_runs(tmp_path)
    if target == "folder":
        result = cli("report", str(run_a), "-o", str(tmp_path))
        assert result.returncode == 2 and "is a folder; give the HTML file" in result.stderr
    else:
        result = cli("report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html"))
        assert result.returncode == 2 and "nope: no outcomes.jsonl here" in result.stderr
    assert not (tmp_path / "r.html").exists()
