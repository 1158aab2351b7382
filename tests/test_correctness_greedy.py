"""The greedy check: the comparison rule against real HTTP servers, and the check through the pipeline
(when it runs, the human's cached generations, a kind a conftest adds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from correctness_toy import replay, serve_py, served_task
from fake_completions_server import Behaviour, FakeCompletions
from pytest_isobench.correctness import CheckError, check_correctness
from pytest_isobench.correctness.greedy import (
    CLIENT,
    DEFAULT_PROMPTS,
    Generation,
    compare,
    parse_completion,
    request_body,
)
from pytest_isobench.pipeline import run_job
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.sandbox.repos import materialise
from support import ANCHOR, BENCH_PY, WORK_PY, diff_trees, write_source_task
from test_pipeline import job


def generations(tmp_path: Path, behaviour: Behaviour, max_tokens: int = 12) -> list[Generation]:
    """The built-in prompts through the check's own client (run as a process, as the sandbox runs it)."""
    bodies = [request_body(prompt, max_tokens=max_tokens, top_k=5) for prompt in DEFAULT_PROMPTS]
    job = tmp_path / f"job-{len(list(tmp_path.glob('job-*')))}.json"
    with FakeCompletions(behaviour) as server:
        job.write_text(
            json.dumps({"base_url": server.base_url, "model": None, "timeout_s": 30, "requests": bodies})
        )
        done = subprocess.run(
            [sys.executable, str(CLIENT), str(job)], capture_output=True, text=True, timeout=120
        )
        assert server.requests == len(DEFAULT_PROMPTS)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["model"] == "fake-model"  # from /v1/models
    return [parse_completion(response) for response in reply["responses"]]


def test_identical_servers_match_on_every_prompt(tmp_path: Path) -> None:
    human, agent = generations(tmp_path, Behaviour({})), generations(tmp_path, Behaviour({}))
    results = [compare(h, a) for h, a in zip(human, agent, strict=True)]
    assert [r["result"] for r in results] == ["match"] * len(DEFAULT_PROMPTS)
    assert all(len(h.tokens) == 12 and len(h.top[0]) == 5 for h in human)


def test_a_changed_token_is_a_mismatch_at_its_position(tmp_path: Path) -> None:
    human, agent = generations(tmp_path, Behaviour({})), generations(tmp_path, Behaviour({}, change_at=3))
    result = compare(human[0], agent[0])
    assert result["result"] == "mismatch" and result["position"] == 3
    assert result["agent_token"] == " wrong" and result["agent_token"] not in result["human_top"]
    assert "token 3" in result["why"]


def test_the_logprob_rule_accepts_a_near_tie(tmp_path: Path) -> None:
    human, agent = generations(tmp_path, Behaviour({})), generations(tmp_path, Behaviour({}, near_tie_at=2))
    result = compare(human[0], agent[0])
    assert result["result"] == "near_tie" and result["position"] == 2
    assert result["agent_token"] in result["human_top"] and result["human_token"] in result["agent_top"]
    assert "why" not in result


def test_a_token_outside_one_sides_top_k_is_not_a_near_tie() -> None:
    human = Generation([" a", " b"], [{" a": -0.1, " c": -2.0}, {" b": -0.1}], " a b")
    agent = Generation([" c", " b"], [{" c": -0.1, " d": -2.0}, {" b": -0.1}], " c b")  # " a" not in its top
    assert compare(human, agent)["result"] == "mismatch"
    shorter = Generation([" a"], [{" a": -0.1}], " a")
    result = compare(human, shorter)
    assert (
        result["result"] == "mismatch" and result["position"] == 1 and "ended after 1 tokens" in result["why"]
    )


def greedy_task(tmp_path: Path) -> Path:
    return served_task(tmp_path, 'kind = "greedy"\nmax_tokens = 8\n')


def test_greedy_through_the_pipeline_near_tie_passes_wrong_token_fails_human_cached(tmp_path: Path) -> None:
    task_file = greedy_task(tmp_path)
    near = run_job(job(tmp_path, task_file, replay(tmp_path, "near", "0.02", near_tie_at=1), run_id="r1"))
    assert near.hard in ("beats", "similar"), near.hard_detail
    assert near.correctness == "pass", near.correctness_detail
    (check,) = near.correctness_detail["checks"]
    assert check["near_ties"] == len(DEFAULT_PROMPTS) and check["match_rate"] == 0.0
    assert check["first_divergence"]["result"] == "near_tie" and check["human_source"] == "fresh"
    assert near.correctness_detail["mode"] == "passing" and near.correctness_detail["gate"] is False

    wrong = run_job(job(tmp_path, task_file, replay(tmp_path, "wrong", "0.02", change_at=5), run_id="r2"))
    assert wrong.correctness == "fail", wrong.correctness_detail
    (check,) = wrong.correctness_detail["checks"]
    assert check["mismatches"] == len(DEFAULT_PROMPTS) and check["human_source"] == "cache"
    assert check["first_divergence"]["position"] == 5
    assert wrong.correctness_detail["reason"].startswith(f"greedy: {len(DEFAULT_PROMPTS)} of")

    # An edited cache entry is not trusted: the human is asked again, and the run says why.
    (entry,) = (tmp_path / "cache" / "correctness" / "toy-sleep").glob("greedy-*.json")
    data = json.loads(entry.read_text())
    data["content"]["result"][0]["tokens"][0] = " edited"
    entry.write_text(json.dumps(data))
    again = run_job(job(tmp_path, task_file, replay(tmp_path, "again", "0.02", change_at=5), run_id="r3"))
    (check,) = again.correctness_detail["checks"]
    assert check["human_source"] == "fresh" and "checksum does not match" in check["notes"][0]


def test_correctness_runs_for_passing_patches_unless_asked_for_all_or_off(tmp_path: Path) -> None:
    task_file = greedy_task(tmp_path)
    slower = replay(tmp_path, "slower", "0.12", change_at=0)
    skipped = run_job(job(tmp_path, task_file, slower, run_id="p1"))
    assert skipped.hard == "worse" and skipped.correctness == "not_run"
    assert "did not pass the hard gate" in skipped.correctness_detail["reason"]
    checked = run_job(job(tmp_path, task_file, slower, run_id="p2", correctness="all"))
    assert checked.hard == "worse" and checked.correctness == "fail"
    off = run_job(job(tmp_path, task_file, replay(tmp_path, "fast", "0.02"), run_id="p3", correctness="off"))
    assert off.correctness == "not_run" and off.correctness_detail["reason"] == "--isobench-correctness=off"


def test_an_agent_server_that_does_not_start_fails_and_an_unknown_kind_errors(tmp_path: Path) -> None:
    task_file = greedy_task(tmp_path)
    setup = job(tmp_path, task_file, "human")
    repo = materialise(setup.task, task_file, tmp_path / "cache" / "repos")
    sandbox = LocalSandbox(SandboxSpec(setup.task, task_file, repo, tmp_path / "ws", setup.settings))
    exits_at_once = diff_trees({"serve.py": serve_py()}, {"serve.py": "raise SystemExit(3)\n"}, tmp_path)
    try:
        trees = {
            "human": sandbox.variant_tree("human"),
            "agent": sandbox.variant_tree("agent", exits_at_once),
        }
        result = check_correctness(sandbox, setup.task, trees, tmp_path / "out", setup.settings)
        assert result["status"] == "fail", result
        assert result["reason"].startswith("greedy: the agent tree's server exited before it answered")
        result = check_correctness(sandbox, setup.task, trees, tmp_path / "out2", setup.settings, checks={})
        assert result["status"] == "error" and "no check of kind 'greedy' is registered" in result["reason"]
    finally:
        sandbox.close()


@pytest.mark.parametrize("status", ["pass", "fail"])
def test_a_conftest_adds_a_kind_of_check(pytester: pytest.Pytester, status: str) -> None:
    base = {"bench.py": BENCH_PY, "work.py": WORK_PY, "serve.py": serve_py()}
    task_file = write_source_task(pytester.path / "tasks", "toy-sleep", base=base)
    task_file.write_text(task_file.read_text() + f'\n[correctness]\nkind = "verdict"\nanswer = "{status}"\n')
    pytester.makeconftest(
        """
        class Verdict:
            kind = "verdict"

            def run(self, config, ctx):
                assert ctx.tree("agent").is_dir() and ctx.tree("human").is_dir()
                return {"status": config.answer, "kind": self.kind, "reason": "as configured"}

        def pytest_isobench_correctness_checks():
            return {"verdict": Verdict()}
        """
    )
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    faster = replay(pytester.path, "faster", "0.005")  # far faster than the human's 0.02: beats it
    result = pytester.runpytest(
        f"--isobench-agent={faster}",
        "--isobench-rounds=3",
        "--isobench-warmup=0",
        "-p",
        "no:cacheprovider",
        "--isobench-correctness-gate",
    )
    if status == "pass":
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*but is incorrect: verdict: as configured (--isobench-correctness-gate)*"]
        )


def test_a_reply_without_logprobs_and_a_server_error_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match=r"no usable logprobs \(choices\[0\]\.logprobs\.tokens"):
        parse_completion({"choices": [{"text": "x", "logprobs": None}]})
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"base_url": "http://127.0.0.1:9", "model": "m", "timeout_s": 5, "requests": [{}]})
    )
    done = subprocess.run([sys.executable, str(CLIENT), str(job)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "http://127.0.0.1:9/v1/completions: URLError" in done.stderr
