"""One (task, agent) through prepare → solve → measure → verdict, without pytest's plugin machinery."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from fake_llm_server import CHAT, FakeLLM, fake_llm_fixture  # noqa: F401
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.measure.cache import checksum
from pytest_isobench.measure.runner import interleaved_schedule
from pytest_isobench.pipeline import InfrastructureError, Job, run_job
from pytest_isobench.results import Outcome, read_outcomes
from pytest_isobench.sandbox.gitutil import git
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.scoring import quadrant
from pytest_isobench.tasks import LoadedTask
from support import BENCH_PY, WORK_PY, diff_trees, load, write_source_task
from test_judge_llm import answer as judge_answer
from test_local_sandbox import settings

SERVER_PY = '''\
"""A toy server: /health, and /v1/work which waits DELAY before answering."""
import sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
import work

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/v1/work":
            work.step()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''
CLIENT_PY = '''\
"""Client printing vLLM's serving result block (TTFT only)."""
import sys, time, urllib.request
ttfts = []
for _ in range(3):
    start = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/work").read()
    ttfts.append((time.perf_counter() - start) * 1000)
print("{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="="))
print("{:<40} {:<10}".format("Successful requests:", 3))
print("{:<40} {:<10.2f}".format("Mean TTFT (ms):", sum(ttfts) / 3))
print("=" * 50)
'''


def job(tmp_path: Path, task_file: Path, spec: str, **overrides: object) -> Job:
    base = replace(
        settings(tmp_path), **{"rounds": 3, "warmup": 1, "agent": spec, "run_id": "run1", **overrides}
    )  # type: ignore[arg-type]
    agent = build_agent(spec, agent_registry([]))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, base, base.run_id or "run1", LocalSandbox)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=5)


def replay_file(tmp_path: Path, patch: str) -> str:
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": "toy-sleep", "model_patch": patch}) + "\n")
    return f"replay:{preds}"


def work_patch(new_body: str) -> str:
    """Replace the body of work.step() (the last line of work.py)."""
    old = WORK_PY.splitlines()
    assert old[-2:] == ["def step():", "    time.sleep(DELAY)"]
    n = len(old) - 1
    return (
        "diff --git a/work.py b/work.py\n--- a/work.py\n+++ b/work.py\n"
        f"@@ -{n},2 +{n},2 @@\n {old[-2]}\n-{old[-1]}\n+{new_body}\n"
    )


def test_human_is_similar_and_everything_is_recorded(tmp_path: Path, toy: Path) -> None:
    outcome = run_job(job(tmp_path, toy, "human"))
    assert outcome.status == "ok" and (outcome.hard == "similar" or outcome.inconclusive), outcome.hard_detail
    assert outcome.quadrant == "unscored" and outcome.hard_metric == "avg_latency"
    detail = outcome.hard_detail
    assert detail["medians"]["baseline"] > 2.0 * detail["medians"]["human"]
    assert detail["human_vs_baseline_pct"] > 50 and len(detail["ci_pct"]) == 2
    assert detail["estimator"] == "hodges-lehmann" and detail["pct_of_medians"] is not None
    assert detail["human_gain_measurable"] is True
    assert {v: src["source"] for v, src in outcome.measured["sources"].items()} == dict.fromkeys(
        ("agent", "baseline", "human"), "fresh"
    )
    noise = outcome.measured["noise"]
    assert {v: n["rounds"] for v, n in noise.items()} == {"agent": 3, "baseline": 3, "human": 3}
    assert all(n["cv_pct"] >= 0 for n in noise.values())
    for run in outcome.measured["runs"]["agent"]:  # when, on which GPUs, under what load
        assert run["started_at"].endswith("+00:00") and "gpus" in run
        assert set(run["host"]) == {"before", "during", "loaded"}
        assert run["host"]["before"]["cpus"] >= 1
    assert set(outcome.measured["metrics"]["agent"]) >= {"avg_latency", "p50_latency"}
    art = Path(outcome.artifacts)
    assert (art / "prompt.txt").is_file() and "DELAY" in (art / "patch.diff").read_text()
    assert (art / "bench" / "round-2" / "agent" / "stdout.txt").read_text().startswith("Avg latency:")
    assert json.loads((art / "bench" / "round-0" / "human" / "metrics.json").read_text())["avg_latency"] > 0
    assert json.loads((art / "outcome.json").read_text())["hard"] == "similar"
    (record,) = read_outcomes(tmp_path / "runs" / "run1")
    assert record["task_id"] == "toy-sleep" and record["agent"] == "human" and record["hard"] == "similar"


def baseline_rounds(outcome: Outcome) -> int:
    return sum("baseline" in order for order in outcome.measured["schedule"][1:])  # after the warm-up


def test_noop_gets_a_fresh_human_and_a_drift_checked_cached_baseline(tmp_path: Path, toy: Path) -> None:
    first = run_job(job(tmp_path, toy, "human", rounds=5))
    assert first.measured["cached"] == []
    assert all(first.measured["sources"][v].get("stored") for v in ("baseline", "human"))
    outcome = run_job(job(tmp_path, toy, "noop", rounds=5, run_id="run2"))
    assert outcome.hard == "worse" and (outcome.hard_pct or 0) < -100
    sources = outcome.measured["sources"]
    # The human is measured fresh next to the agent, every round; the cache only says how it compares.
    assert sources["human"]["source"] == "fresh" and sources["human"]["cache_compare"]["cached_rounds"] == 5
    assert all("human" in order and "agent" in order for order in outcome.measured["schedule"])
    drift = sources["baseline"]["drift_check"]
    assert drift["fresh_rounds"] == 3 and drift["cached_rounds"] == 5
    if drift["drifted"]:  # the machine changed between the runs: the baseline is measured in full again
        assert sources["baseline"]["source"] == "fresh" and baseline_rounds(outcome) == 5
    else:
        assert sources["baseline"]["source"] == "cache" and baseline_rounds(outcome) == 3
        assert outcome.measured["cached"] == ["baseline"]
        assert outcome.hard_detail["rounds"]["baseline"] == 5  # the cached rounds feed the figures
    again = run_job(job(tmp_path, toy, "noop", rounds=5, remeasure=True, run_id="run3"))
    assert again.measured["cached"] == [] and baseline_rounds(again) == 5


def cache_file(tmp_path: Path, variant: str) -> Path:
    (path,) = (tmp_path / "cache" / "measurements" / "toy-sleep").glob(f"{variant}-*.json")
    return path


def test_a_drifted_baseline_is_measured_again_and_replaced(tmp_path: Path, toy: Path) -> None:
    run_job(job(tmp_path, toy, "human", rounds=4))
    path = cache_file(tmp_path, "baseline")
    data = json.loads(path.read_text())
    for run in data["content"]["runs"]:  # as if measured on a machine twice as fast, checksum intact
        run["metrics"]["avg_latency"] /= 2
    data["checksum"] = checksum(data["content"])
    path.write_text(json.dumps(data))
    outcome = run_job(job(tmp_path, toy, "noop", rounds=4, run_id="run2"))
    baseline = outcome.measured["sources"]["baseline"]
    assert baseline["source"] == "fresh" and baseline["drift_check"]["drifted"] is True
    assert baseline["stored"] is True and baseline_rounds(outcome) == 4
    stored = json.loads(cache_file(tmp_path, "baseline").read_text())["content"]
    assert stored["info"]["run_id"] == "run2" and stored["info"]["rounds"] == 4
    assert min(r["metrics"]["avg_latency"] for r in stored["runs"]) > 0.05  # the fresh 60 ms ones


def test_a_tampered_cache_entry_is_discarded_with_a_warning_and_measured_again(
    tmp_path: Path, toy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_job(job(tmp_path, toy, "human", rounds=4))
    path = cache_file(tmp_path, "baseline")
    data = json.loads(path.read_text())
    info = data["content"]["info"]
    assert info["run_id"] == "run1" and info["measured_at"] and info["versions"]["python"]
    assert info["measure_code"] and info["rounds"] == 4 and set(info["load"]) >= {"loaded_runs", "runs"}
    for run in data["content"]["runs"]:  # an agent making the reference look slow; checksum left as is
        run["metrics"]["avg_latency"] = 1e-9
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="pytest_isobench"):
        outcome = run_job(job(tmp_path, toy, "noop", rounds=4, run_id="run2"))
    assert any("checksum does not match" in r.getMessage() for r in caplog.records)
    assert any("checksum does not match" in w for w in outcome.measured["warnings"])
    assert outcome.measured["sources"]["baseline"]["source"] == "fresh" and baseline_rounds(outcome) == 4
    assert min(r["metrics"]["avg_latency"] for r in outcome.measured["runs"]["baseline"]) > 0.05
    assert outcome.hard_detail["agent_vs_baseline_pct"] is not None
    assert abs(outcome.hard_detail["agent_vs_baseline_pct"]) < 50  # noop vs a fresh baseline: same code
    rewritten = json.loads(cache_file(tmp_path, "baseline").read_text())
    assert rewritten["checksum"] == checksum(rewritten["content"])


def test_a_failing_agent_leaves_the_cached_references_as_they_were(tmp_path: Path, toy: Path) -> None:
    run_job(job(tmp_path, toy, "human", rounds=4))
    before = {v: cache_file(tmp_path, v).read_text() for v in ("baseline", "human")}
    crash = replay_file(tmp_path, work_patch("    raise RuntimeError('broken')"))
    outcome = run_job(job(tmp_path, toy, crash, rounds=4, run_id="run2"))
    assert outcome.hard == "failed" and outcome.hard_reason == "benchmark_crashed"
    assert len(outcome.measured["schedule"]) == 1  # stopped after the first pass
    assert outcome.measured["sources"]["baseline"]["source"] == "cache"
    assert outcome.measured["sources"]["baseline"]["drift_check"]["drifted"] is None
    assert {v: cache_file(tmp_path, v).read_text() for v in ("baseline", "human")} == before


def test_adaptive_rounds_stop_at_the_minimum_when_the_verdict_is_clear(tmp_path: Path, toy: Path) -> None:
    outcome = run_job(job(tmp_path, toy, "noop", rounds_auto=True, min_rounds=3, max_rounds=8))
    assert outcome.hard == "worse" and outcome.inconclusive is False
    assert outcome.measured["rounds_mode"] == "auto(3-8)"
    assert {v: n["rounds"] for v, n in outcome.measured["noise"].items()} == {
        "agent": 3,
        "baseline": 3,
        "human": 3,
    }


def test_adaptive_rounds_add_agent_and_human_rounds_while_undecided(tmp_path: Path) -> None:
    # Agent 2 % slower than the human with ±15 % jitter: the interval straddles -5 % for a while.
    jitter = WORK_PY.replace("time.sleep(DELAY)", "time.sleep(DELAY * random.uniform(0.85, 1.15))").replace(
        "import time", "import random, time"
    )
    human = {"bench.py": BENCH_PY, "work.py": jitter.replace("0.06", "0.02")}
    base = {"bench.py": BENCH_PY, "work.py": jitter}
    task_file = write_source_task(tmp_path / "tasks", "toy-sleep", base=base, human=human)
    agent = replay_file(
        tmp_path, diff_trees({"work.py": jitter}, {"work.py": jitter.replace("0.06", "0.0204")}, tmp_path)
    )
    outcome = run_job(job(tmp_path, task_file, agent, rounds_auto=True, min_rounds=3, max_rounds=7, warmup=0))
    rounds = {v: n["rounds"] for v, n in outcome.measured["noise"].items()}
    assert rounds["baseline"] == 3  # informational only: the minimum
    assert rounds["agent"] == rounds["human"] == len(outcome.measured["schedule"])
    assert 3 <= rounds["agent"] <= 7
    detail = outcome.hard_detail
    interval = detail["ci_pct"]
    if rounds["agent"] < 7:  # it stopped early: the interval is clear of both band edges
        assert interval is not None and not (interval[0] < -5 < interval[1] or interval[0] < 5 < interval[1])
        assert outcome.inconclusive is False
    else:
        assert outcome.inconclusive == (
            interval is not None and (interval[0] < -5 < interval[1] or interval[0] < 5 < interval[1])
        )


def test_variants_are_interleaved_in_fresh_orders(tmp_path: Path, toy: Path) -> None:
    outcome = run_job(job(tmp_path, toy, "human"))
    schedule = outcome.measured["schedule"]
    assert len(schedule) == 4 and all(sorted(order) == ["agent", "baseline", "human"] for order in schedule)
    orders = interleaved_schedule(["agent", "baseline", "human"], rounds=20, warmup=1, seed=7)
    assert len({tuple(order) for order in orders}) > 1
    assert orders == interleaved_schedule(["agent", "baseline", "human"], rounds=20, warmup=1, seed=7)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (
            "diff --git a/work.py b/work.py\n--- a/work.py\n+++ b/work.py\n@@ -1 +1 @@\n-nope\n+yes\n",
            "patch_does_not_apply",
        ),
        (work_patch("    raise RuntimeError('broken')"), "benchmark_crashed"),
        (work_patch("    import sys; sys.stdout.close(); sys.exit(0)"), "no_metrics"),
        (work_patch("    time.sleep(60)"), "timeout"),
    ],
)
def test_agent_failures_have_reasons(tmp_path: Path, toy: Path, patch: str, reason: str) -> None:
    outcome = run_job(job(tmp_path, toy, replay_file(tmp_path, patch)))
    assert outcome.status == "ok" and outcome.hard == "failed" and outcome.hard_reason == reason, (
        outcome.measured
    )
    assert outcome.hard_pct is None


def test_a_failing_baseline_is_an_infrastructure_error(tmp_path: Path) -> None:
    broken = {"bench.py": "raise SystemExit('no engine here')\n", "work.py": WORK_PY}
    task_file = write_source_task(tmp_path / "tasks", "toy-sleep", base=broken, human={**broken, "x": "1\n"})
    with pytest.raises(InfrastructureError, match="baseline variant failed"):
        run_job(job(tmp_path, task_file, "noop"))
    (record,) = read_outcomes(tmp_path / "runs" / "run1")
    assert record["status"] == "error" and record["hard"] is None and "no engine here" in record["error"]


def test_a_failing_human_stops_the_task_at_once(tmp_path: Path) -> None:
    # The human's benchmark hangs; without the stop the agent and baseline would go on for 8 rounds.
    hanging = {"bench.py": BENCH_PY, "work.py": WORK_PY.replace("0.06", "60")}
    task_file = write_source_task(tmp_path / "tasks", "toy-sleep", human=hanging, timeout_s=2)
    with pytest.raises(InfrastructureError, match=r"human variant failed \(timeout\).*stopped at once"):
        run_job(job(tmp_path, task_file, "noop", rounds=8, warmup=0))
    (record,) = read_outcomes(tmp_path / "runs" / "run1")
    runs = record["measured"]["runs"]
    assert len(runs["human"]) == 1 and runs["human"][0]["retried"].startswith("timeout")
    assert len(runs["agent"]) <= 1 and len(runs["baseline"]) <= 1  # at most the first pass


def test_a_run_that_times_out_once_is_retried_before_it_counts(tmp_path: Path, toy: Path) -> None:
    marker = tmp_path / "first-attempt-done"
    body = (
        f"    import os; first = not os.path.exists({str(marker)!r}); open({str(marker)!r}, 'a').close();"
        " time.sleep(60 if first else DELAY / 3)"
    )
    outcome = run_job(job(tmp_path, toy, replay_file(tmp_path, work_patch(body)), warmup=0))
    assert outcome.hard in ("beats", "similar", "worse"), outcome.measured
    (first,) = [r for r in outcome.measured["runs"]["agent"] if r["retried"]]
    assert first["retried"].startswith("timeout") and first["status"] == "ok"
    assert first["directory"].endswith("/retry") and outcome.measured["retried"] == 1


def test_agent_time_budget_is_recorded(tmp_path: Path, toy: Path) -> None:
    outcome = run_job(job(tmp_path, toy, "command:sleep 30", time_budget_min=0.02))
    assert outcome.timed_out and outcome.agent_run["timed_out"] and outcome.hard == "worse"


def test_rerun_with_the_same_run_id_resumes(tmp_path: Path, toy: Path) -> None:
    counter = tmp_path / "calls"
    spec = f"command:echo x >> {counter}; sed -i s/0.06/0.02/ work.py"
    first = run_job(job(tmp_path, toy, spec))
    (Path(first.artifacts) / "outcome.json").unlink()  # as if it crashed while scoring
    second = run_job(job(tmp_path, toy, spec))
    assert counter.read_text() == "x\n"  # the agent ran once; its patch was reused
    # Identical code: similar, or flagged as noise (a loaded host can blur 3 rounds of 20 ms sleeps).
    assert all(o.hard == "similar" or o.inconclusive for o in (first, second))
    third = run_job(job(tmp_path, toy, spec))
    assert third.measured == second.measured  # the finished outcome is returned as recorded


def test_serving_benchmark_starts_and_stops_its_server(tmp_path: Path) -> None:
    base = {"server.py": SERVER_PY, "client.py": CLIENT_PY, "work.py": WORK_PY}
    task_file = write_source_task(
        tmp_path / "tasks",
        "toy-sleep",
        base=base,
        mode="serving",
        command="python client.py {port}",
        metric="mean_ttft_ms",
        server="python server.py {port}",
        extra="server_timeout_s = 20",
    )
    outcome = run_job(job(tmp_path, task_file, "noop"))
    assert outcome.hard == "worse" and outcome.hard_metric == "mean_ttft_ms"
    assert outcome.hard_detail["medians"]["human"] < 40 < outcome.hard_detail["medians"]["agent"]
    logs = list(Path(outcome.artifacts).glob("bench/*/*/server.log"))
    assert len(logs) == 12


GEN_PY = '''\
"""Prints the engine's answers for fixed inputs."""
import work

work.step()
print(work.DELAY > 0)
'''


@pytest.mark.parametrize(
    ("agent_body", "status"),
    [("    time.sleep(DELAY / 3)", "pass"), ("    print('side effect')", "fail")],
)
def test_output_correctness_is_recorded_and_never_gates(tmp_path: Path, agent_body: str, status: str) -> None:
    base = {"bench.py": BENCH_PY, "work.py": WORK_PY, "gen.py": GEN_PY}
    task_file = write_source_task(tmp_path / "tasks", "toy-sleep", base=base)
    task_file.write_text(
        task_file.read_text() + '\n[correctness]\nkind = "output"\ncommand = "python gen.py"\n'
    )
    outcome = run_job(job(tmp_path, task_file, replay_file(tmp_path, work_patch(agent_body))))
    assert outcome.correctness == status, outcome.correctness_detail
    assert outcome.hard in ("beats", "similar", "worse")  # measured as usual either way
    if status == "fail":
        assert "output differs" in outcome.correctness_detail["reason"]


def test_model_judge_verdict_is_reused_by_a_later_run_and_no_key_is_written(
    tmp_path: Path, toy: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-" + "k" * 32
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    fake_llm.openai_answer(json.dumps(judge_answer("related_target")))
    first = run_job(job(tmp_path, toy, "human", judges=("openai:gpt-test",)))
    # Q1 when the A/A measurement reads similar; a loaded host may blur it to Q2 (hard is not the point here).
    assert first.bottleneck == "related_target" and first.quadrant == quadrant(first.hard, "related_target")
    assert len(fake_llm.requests(CHAT)) == 1
    second = run_job(job(tmp_path, toy, "human", judges=("openai:gpt-test",), run_id="run2"))
    assert second.bottleneck == "related_target" and len(fake_llm.requests(CHAT)) == 1  # from the cache
    assert second.quadrant == quadrant(second.hard, "related_target")
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".txt", ".diff"):
            assert key not in path.read_text(errors="replace"), path


def test_judge_outage_leaves_the_task_unscored_not_failed(
    tmp_path: Path, toy: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    for _ in range(6):
        fake_llm.error(CHAT, 500)
    outcome = run_job(job(tmp_path, toy, "human", judges=("openai:gpt-test",)))
    assert outcome.status == "ok" and outcome.hard is not None and outcome.quadrant == "unscored"
    assert "500" in (outcome.soft["error"] or "")


def test_patch_stats_count_any_file_name_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_isobench.pipeline import patch_stats
    from support import make_tree

    odd = ["my file.py", "café.py", 'tab\t"q".py', "dir b/x.py"]
    work = tmp_path / "work"
    make_tree(work, {**{name: "a\nb\n" for name in odd}, "old.txt": "keep\n" * 5, "blob.bin": b"\x00\x01"})
    git("init", "-q", cwd=work, isolated=True)
    git("add", "-A", cwd=work, isolated=True)
    git("commit", "-qm", "base", cwd=work, isolated=True)
    make_tree(work, {**{name: "a\n++b\nc\n" for name in odd}, "blob.bin": b"\x00\x02"})
    git("mv", "old.txt", "new name.txt", cwd=work)
    (work / "new name.txt").write_text("keep\n" * 4 + "changed\n")
    git("add", "-A", cwd=work, isolated=True)
    patch = git("diff", "--cached", "-M", "--binary", cwd=work, isolated=True).stdout
    assert "rename to new name.txt" in patch and '"b/caf\\303\\251.py"' in patch
    # run from a repository's subfolder: git apply there would drop the paths outside it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    git("init", "-q", cwd=tmp_path)
    monkeypatch.chdir(tmp_path / "sub")
    stats = patch_stats(patch)
    assert sorted(stats["files"]) == sorted([*odd, "blob.bin", "new name.txt"])
    assert stats["files_changed"] == 6
    assert stats["lines_added"] == 2 * len(odd) + 1, "'++b' is an added line, not a header"
    assert stats["lines_removed"] == len(odd) + 1
    assert patch_stats("")["files"] == [] and patch_stats("")["empty"] is True


def test_patch_stats_of_a_patch_git_cannot_read_fall_back_to_the_diff_reader() -> None:
    from pytest_isobench.pipeline import patch_stats

    garbled = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-a\n+b\n"  # a short hunk
    stats = patch_stats(garbled)
    assert stats["files"] == ["x.py"] and (stats["lines_added"], stats["lines_removed"]) == (1, 1)
