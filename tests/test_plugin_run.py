"""Whole runs through pytest: verdicts as pass/fail, the outcome on reports, markers, summary, JSON report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fake_llm_server import SilentServer, silent_server_fixture  # noqa: F401
from support import WORK_PY, write_source_task

DIST_MODES = {"single": [], "xdist2": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}
# Adaptive rounds from 3 to 8: an A/A pair on a loaded host gets more rounds until its interval is clear.
FAST = [
    "--isobench-rounds=auto",
    "--isobench-min-rounds=3",
    "--isobench-max-rounds=8",
    "--isobench-warmup=0",
    "-p",
    "no:cacheprovider",
]


@pytest.fixture(params=list(DIST_MODES), ids=list(DIST_MODES))
def dist(request: pytest.FixtureRequest) -> list[str]:
    return DIST_MODES[request.param]


def run_dir(pytester: pytest.Pytester) -> Path:
    (path,) = (pytester.path / ".isobench" / "runs").iterdir()
    return path


def test_human_passes_noop_fails_in_every_mode(suite: pytest.Pytester, dist: list[str]) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, *dist)
    result.stdout.fnmatch_lines(
        [
            "*isobench: run *",
            "toy-one*avg_latency*unscored*",
            "repo*agent*tasks*beats*similar*worse*failed*error*",
        ]
    )
    rows = [line for line in result.outlines if re.match(r"toy-(one|two) ", line)]
    assert len(rows) == 2, result.outlines
    # Identical code is similar; on a heavily loaded host a miss must be one the harness flags as noise.
    missed = [row for row in rows if " similar " not in row]
    assert all("inconclusive after" in row for row in missed), rows
    result.assert_outcomes(passed=2 - len(missed), failed=len(missed))
    result = suite.runpytest("--isobench-agent=noop", *FAST, *dist)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*toy-one: agent noop is worse than the human change on avg_latency: -* % (needs ≥ -5 %);"
            " agent exit code *; artifacts in *",
        ]
    )


def test_outcome_reaches_json_report_junit_and_outcomes(suite: pytest.Pytester, dist: list[str]) -> None:
    result = suite.runpytest(
        "--isobench-agent=noop",
        *FAST,
        *dist,
        "--json-report",
        "--json-report-file=r.json",
        "--junitxml=j.xml",
    )
    result.assert_outcomes(failed=2)
    report = json.loads((suite.path / "r.json").read_text())
    junit = ElementTree.parse(suite.path / "j.xml").getroot()
    props = [p for p in junit.iter("property") if p.get("name") == "isobench"]
    assert len(props) == 2
    assert sorted(json.loads(p.get("value") or "")["task_id"] for p in props) == ["toy-one", "toy-two"]
    assert report["isobench"]["groups"] == [
        {
            "repo": "toy",
            "agent": "noop",
            "n": 2,
            "beats": 0,
            "similar": 0,
            "worse": 2,
            "failed": 0,
            "error": 0,
            "q1": 0,
            "q2": 0,
            "q3": 0,
            "q4": 0,
            "unscored": 2,
            "hard_success_pct": 0.0,
            "true_success_pct": None,
            "gap_pct": None,
            "right_target_pct": None,
            "hard_pass_incorrect": 0,
            "inconclusive": 0,  # 60 ms against 20 ms: clear after the minimum of 3 rounds
        }
    ]
    for test in report["tests"]:
        (props,) = test["user_properties"]
        outcome = props["isobench"]
        assert outcome["hard"] == "worse" and outcome["agent"] == "noop" and outcome["quadrant"] == "unscored"
        assert {"isobench_hard_worse", "isobench_unscored"} <= set(test["keywords"])
    records = [json.loads(line) for line in (run_dir(suite) / "outcomes.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in records) == ["toy-one", "toy-two"]
    assert all(r["run_id"] == run_dir(suite).name for r in records)


def test_hint_level_reaches_prompt_outcome_and_summary(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "--isobench-hints=files", "-k", "toy-one")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*isobench: run * (hints: files)*"])
    (record,) = [json.loads(line) for line in (run_dir(suite) / "outcomes.jsonl").read_text().splitlines()]
    assert record["hints"] == "files"
    assert "- work.py" in (Path(record["artifacts"]) / "prompt.txt").read_text()
    bad = suite.runpytest("--isobench-hints=everything")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--isobench-hints: 'everything' is not one of: none, files*"])


def test_runs_without_json_report_plugin(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "-p", "no:pytest_jsonreport")
    result.assert_outcomes(passed=2)


def test_rerun_with_run_id_resumes_recorded_tasks(suite: pytest.Pytester) -> None:
    first = suite.runpytest("--isobench-agent=noop", *FAST, "-k", "toy-one")
    first.assert_outcomes(failed=1)
    run_id = run_dir(suite).name
    result = suite.runpytest(
        "--isobench-agent=noop",
        *FAST,
        f"--isobench-run-id={run_id}",
        "--log-level=INFO",
        "-o",
        "log_cli=true",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*toy-one: resumed: outcome already recorded*"])


def test_agent_failure_is_a_failure_and_infrastructure_trouble_an_error(suite: pytest.Pytester) -> None:
    preds = suite.path / "preds.jsonl"
    broken = "diff --git a/work.py b/work.py\n--- a/work.py\n+++ b/work.py\n@@ -1 +1 @@\n-no such line\n+x\n"
    preds.write_text(json.dumps({"instance_id": "toy-one", "model_patch": broken}) + "\n")
    write_source_task(
        suite.path / "tasks", "toy-two", base={"bench.py": "raise SystemExit(3)\n", "work.py": WORK_PY}
    )
    result = suite.runpytest(f"--isobench-agent=replay:{preds}", *FAST)
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            # both references crash: whichever the shuffled schedule runs first stops the task
            "*toy-two: infrastructure error, not the agent's: *the * variant failed (crashed)*;"
            " artifacts in */toy-two/replay-*",
            "*toy-one: agent replay:* failed (patch_does_not_apply) on avg_latency; agent exit code 0,"
            " within its time budget; artifacts in */toy-one/replay-*",
        ]
    )
    lines = result.outlines
    header = next(i for i, line in enumerate(lines) if line.startswith("repo "))
    cells = dict(zip(lines[header].split(), lines[header + 1].split(), strict=True))
    assert (cells["tasks"], cells["failed"], cells["error"], cells["hard%"]) == ("2", "1", "1", "0.0")
    assert cells["agent"].startswith("replay-") and f"= replay:{preds}" in lines[header + 2]


def test_failure_message_gives_the_agents_exit_code_and_time_out(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=command:exit 3", *FAST, "-k", "toy-one")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*toy-one: agent command:exit 3 is worse than *; agent exit code 3, within its time budget;"
         " artifacts in */toy-one/command-*"]
    )  # fmt: skip
    result = suite.runpytest("--isobench-agent=command:sleep 30", *FAST, "-k", "toy-one",
                             "--isobench-time-budget=0.02")  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*toy-one: agent command:sleep 30 is worse than *; agent timed out: killed at its time budget;*"]
    )


def test_overlap_judge_gives_quadrants(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=human", *FAST, "--isobench-judge=overlap", "-k", "toy-one")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["toy-one*similar*Q1*", "judges overlap on 1 task(s)*"])
    result = suite.runpytest("--isobench-agent=noop", *FAST, "--isobench-judge=overlap", "-k", "toy-one")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["toy-one*worse*Q4*"])
    records = [json.loads(line) for path in (suite.path / ".isobench" / "runs").iterdir()
               for line in (path / "outcomes.jsonl").read_text().splitlines()]  # fmt: skip
    by_agent = {r["agent"]: r for r in records}
    assert by_agent["human"]["bottleneck"] == "same_target" and by_agent["human"]["quadrant"] == "Q1"
    assert by_agent["noop"]["bottleneck"] == "no_optimization" and by_agent["noop"]["quadrant"] == "Q4"
    assert (Path(by_agent["human"]["artifacts"]) / "judge.json").is_file()


def test_resume_judges_a_recorded_outcome_when_judges_change(suite: pytest.Pytester) -> None:
    suite.runpytest("--isobench-agent=human", *FAST, "-k", "toy-one").assert_outcomes(passed=1)
    run_id = run_dir(suite).name
    result = suite.runpytest("--isobench-agent=human", *FAST, f"--isobench-run-id={run_id}",
                             "--isobench-judge=overlap", "-k", "toy-one")  # fmt: skip
    result.assert_outcomes(passed=1)
    outcome = json.loads((run_dir(suite) / "toy-one" / "human" / "outcome.json").read_text())
    assert outcome["quadrant"] == "Q1" and outcome["soft"]["specs"] == ["overlap"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--isobench-judge=gemini", "*--isobench-judge: judge spec 'gemini': unknown judge*"),
        ("--isobench-judge=anthropic:", "*--isobench-judge: judge spec 'anthropic:': missing model;"
         " write anthropic:MODEL*"),
        ("--isobench-judge=overlap,openai", "*--isobench-judge: judge spec 'openai': missing model;"
         " write openai:MODEL*"),
        ("--isobench-judge-timeout=soon", "*--isobench-judge-timeout: 'soon' is not a valid float*"),
        ("--isobench-judge-retries=-1", "*--isobench-judge-retries: '-1' must be at least 0*"),
    ],
)  # fmt: skip
def test_bad_judge_option_is_a_usage_error(suite: pytest.Pytester, option: str, message: str) -> None:
    result = suite.runpytest("--isobench-agent=human", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (suite.path / ".isobench" / "runs").exists(), "nothing ran"


def test_a_judge_registered_by_a_conftest_judges_the_task(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        from pytest_isobench.judge import BottleneckTarget, SoftVerdict

        class Always:
            name, cacheable, prompt_version = "always", False, 1

            def judge(self, ctx):
                target = BottleneckTarget(
                    category="related_target", human_target="?", agent_target="?", rationale="always"
                )
                return SoftVerdict(judge=self.name, bottleneck_target=target)

        def pytest_isobench_judges():
            return {"always": lambda arg: Always()}
        """
    )
    suite.runpytest("--isobench-agent=human", *FAST, "-k", "toy-one", "--isobench-judge=always")
    outcome = json.loads((run_dir(suite) / "toy-one" / "human" / "outcome.json").read_text())
    assert outcome["bottleneck"] == "related_target", outcome["soft"]
    assert outcome["quadrant"] in ("Q1", "Q2"), "right target (the hard verdict is the machine's timing)"


def test_judge_timeout_and_retries_options_bound_a_judge_that_never_answers(
    suite: pytest.Pytester, silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", silent_server.root)
    result = suite.runpytest(
        "--isobench-agent=human", *FAST, "-k", "toy-one", "--isobench-judge=anthropic:claude-sonnet-4-6",
        "--isobench-judge-timeout=0.3", "--isobench-judge-retries=1",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    outcome = json.loads((run_dir(suite) / "toy-one" / "human" / "outcome.json").read_text())
    assert outcome["quadrant"] == "unscored"
    [verdict] = outcome["soft"]["verdicts"]
    assert verdict["error"] == "anthropic API timed out (0.3 s per attempt, 1 retries)"
    assert silent_server.accepted == 2
