"""The bundled smoke tasks end to end, as the README runs them: green with `human`, red with `noop`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["smoke-latency", "smoke-serving", "smoke-throughput"]


def run_smoke(
    agent: str, state: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, object]]]:
    report = state / f"{agent}.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--isobench-agent=" + agent,
        "-m",
        "smoke",
        "-p",
        "no:cacheprovider",
        f"--isobench-runs-dir={state / 'runs'}",
        f"--isobench-cache-dir={state / 'cache'}",
        "--isobench-judge=overlap",
        "--json-report",
        f"--json-report-file={report}",
        *extra,
    ]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    tests = json.loads(report.read_text())["tests"]
    outcomes = {
        t["user_properties"][0]["isobench"]["task_id"]: t["user_properties"][0]["isobench"] for t in tests
    }
    return result, outcomes


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smoke")


def test_human_passes_every_smoke_task(state: Path) -> None:
    # Adaptive rounds (the default): identical code must land within ±5 % even on a busy machine.
    result, outcomes = run_smoke("human", state)
    missed = [o for o in outcomes.values() if o["hard"] not in ("beats", "similar")]
    if missed and all(o["inconclusive"] for o in missed):
        # The harness itself flagged these verdicts as within the noise around the band (a busy
        # machine): measure all three variants once more. A confident wrong verdict still fails.
        result, outcomes = run_smoke("human", state, "--isobench-remeasure")
    assert sorted(outcomes) == SMOKE
    assert result.returncode == 0, result.stdout[-3000:]
    for outcome in outcomes.values():
        assert outcome["hard"] in ("beats", "similar")
        assert outcome["bottleneck"] == "same_target" and outcome["quadrant"] == "Q1"
        assert outcome["correctness"] == "pass"
        # each fix is worth well over 5 % against the baseline
        assert outcome["hard_detail"]["human_vs_baseline_pct"] > 20


def test_noop_fails_every_smoke_task(state: Path) -> None:
    result, outcomes = run_smoke("noop", state)
    assert sorted(outcomes) == SMOKE
    assert result.returncode == 1
    for outcome in outcomes.values():
        assert outcome["hard"] == "worse" and outcome["hard_pct"] < -5
        assert outcome["patch"]["empty"] is True
        assert outcome["bottleneck"] == "no_optimization" and outcome["quadrant"] == "Q4"
