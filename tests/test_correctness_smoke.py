"""The serving smoke task's greedy check end to end: the human passes it; a patch that makes the toy
server faster by skipping most of the prompt passes the hard gate, fails correctness, is counted
"hard pass but incorrect", and fails the item under ``--isobench-correctness-gate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TAMPER = Path(__file__).resolve().parent / "data" / "tamper-serving.diff"


def run_serving(
    state: Path, agent: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = state / f"report-{len(list(state.glob('report-*')))}.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        f"--isobench-agent={agent}",
        "-m",
        "smoke",
        "-k",
        "smoke-serving",
        "-p",
        "no:cacheprovider",
        "--isobench-rounds=3",
        "--isobench-warmup=1",
        # every patch is checked, whatever three rounds make of the hard verdict (the human against
        # itself may land outside the band by noise; this file is about correctness)
        "--isobench-correctness=all",
        f"--isobench-runs-dir={state / 'runs'}",
        f"--isobench-cache-dir={state / 'cache'}",
        "--json-report",
        f"--json-report-file={report}",
        *extra,
    ]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)
    assert report.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(report.read_text())


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


def only_test(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (test,) = report["tests"]
    return test, test["user_properties"][0]["isobench"]


def checks(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["kind"]: check for check in outcome["correctness_detail"]["checks"]}


def test_human_passes_the_greedy_check_of_the_serving_smoke_task(state: Path) -> None:
    result, report = run_serving(state, "human")
    test, outcome = only_test(report)
    assert outcome["hard"] in ("beats", "similar") or outcome["inconclusive"], outcome["hard_detail"]
    assert result.returncode == 0 or outcome["inconclusive"], result.stdout[-3000:]
    assert outcome["correctness"] == "pass", outcome["correctness_detail"]
    greedy = checks(outcome)["greedy"]
    assert greedy["status"] == "pass" and greedy["match_rate"] == 1.0 and greedy["prompts"] == 8
    assert greedy["human_source"] == "fresh"
    assert "isobench_correctness_pass" in test["keywords"]
    generations = Path(outcome["artifacts"]) / "correctness" / "greedy" / "generations.json"
    items = json.loads(generations.read_text())
    assert all(item["result"] == "match" and item["human_text"].strip() for item in items)
    assert report["isobench"]["groups"][0]["hard_pass_incorrect"] == 0


def test_a_faster_wrong_patch_is_a_hard_pass_but_incorrect_and_fails_with_the_gate(state: Path) -> None:
    preds = state / "tamper.jsonl"
    preds.write_text(json.dumps({"instance_id": "smoke-serving", "model_patch": TAMPER.read_text()}) + "\n")
    result, report = run_serving(state, f"replay:{preds}", "--isobench-run-id=tamper")
    test, outcome = only_test(report)
    assert outcome["hard"] == "beats", outcome["hard_detail"]  # most of the prompt is skipped
    assert outcome["correctness"] == "fail", outcome["correctness_detail"]
    greedy = checks(outcome)["greedy"]
    assert greedy["status"] == "fail" and greedy["mismatches"] >= 1 and greedy["match_rate"] < 1.0
    assert greedy["first_divergence"]["position"] == 0  # the state after the prompt is wrong
    assert greedy["human_source"] == "cache"  # the human's generations from the first test
    assert checks(outcome)["output"]["status"] == "fail"
    assert "isobench_correctness_fail" in test["keywords"]
    assert test["outcome"] == "passed" and result.returncode == 0, result.stdout[-3000:]
    (group,) = report["isobench"]["groups"]
    assert group["hard_pass_incorrect"] == 1 and group["beats"] == 1
    assert any(
        line.startswith("smoke-serving") and "incorrect" in line for line in result.stdout.splitlines()
    )
    header = next(line for line in result.stdout.splitlines() if line.startswith("repo "))
    assert "incorrect" in header.split()

    # The same run again, now gated: the recorded outcome is reused, and the item fails.
    result, report = run_serving(
        state, f"replay:{preds}", "--isobench-run-id=tamper", "--isobench-correctness-gate"
    )
    test, outcome = only_test(report)
    assert outcome["hard"] == "beats" and outcome["correctness"] == "fail"
    assert test["outcome"] == "failed" and result.returncode == 1
    assert "passes the hard gate (beats) but is incorrect: greedy:" in result.stdout
    assert "--isobench-correctness-gate" in result.stdout


def test_the_greedy_check_asks_the_server_inside_its_container(state: Path) -> None:
    """Under docker the measurement container has no network: the check's client runs inside it."""
    from test_docker_sandbox import need_docker

    need_docker()
    preds = state / "tamper-docker.jsonl"
    preds.write_text(json.dumps({"instance_id": "smoke-serving", "model_patch": TAMPER.read_text()}) + "\n")
    docker_state = state / "docker"
    docker_state.mkdir()
    result, report = run_serving(docker_state, f"replay:{preds}", "--isobench-backend=docker")
    _test, outcome = only_test(report)
    assert outcome["status"] == "ok", outcome.get("error")
    greedy = checks(outcome)["greedy"]
    assert greedy["status"] == "fail" and greedy["mismatches"] >= 1, greedy  # asked, and found wrong
    assert outcome["correctness"] == "fail", result.stdout[-2000:]
