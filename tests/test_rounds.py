"""The rounds policy (fixed, adaptive, baseline drift checks), the rounds options, the measurement cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_isobench.measure import cache as cache_module
from pytest_isobench.measure.cache import MeasurementCache, checksum, measurement_key
from pytest_isobench.measure.runner import BenchRun, RoundPolicy
from pytest_isobench.pipeline import drift_check
from support import ANCHOR, load, write_source_task


def runs(values: dict[str, list[float]]) -> dict[str, list[BenchRun]]:
    return {
        v: [BenchRun(v, i, "ok", metrics={"tput": x}) for i, x in enumerate(xs)] for v, xs in values.items()
    }


def policy(**kwargs: object) -> RoundPolicy:
    base: dict[str, object] = {
        "metric": "tput",
        "lower_is_better": False,
        "band": 5.0,
        "fixed": None,
        "min_rounds": 5,
        "max_rounds": 20,
    }
    return RoundPolicy(**{**base, **kwargs})  # type: ignore[arg-type]


def test_fixed_rounds_run_every_variant_that_many_times() -> None:
    rule = policy(fixed=3)
    data = runs({"agent": [1.0] * 3, "human": [1.0] * 3, "baseline": [1.0] * 3})
    assert rule.wanted(2, runs({"agent": [1.0] * 2, "human": [1.0] * 2, "baseline": [1.0] * 2})) == [
        "agent",
        "baseline",
        "human",
    ]
    assert rule.wanted(3, data) == []


def test_adaptive_rounds_continue_while_the_interval_straddles_a_band_edge() -> None:
    rule = policy()
    undecided = runs(
        {"agent": [98.0, 100.0, 104.0, 108.0, 112.0], "human": [100.0] * 5, "baseline": [90.0] * 5}
    )
    assert rule.wanted(5, undecided) == ["agent", "human"]  # baseline stays at the minimum
    clear = runs({"agent": [130.0, 131.0, 132.0, 133.0, 134.0], "human": [100.0, 101.0, 99.0, 100.0, 100.5]})
    assert rule.wanted(5, clear) == []
    assert rule.wanted(20, undecided) == []  # the maximum ends it, decided or not
    identical = runs({"agent": [100.0] * 5, "human": [100.0] * 5})
    assert rule.wanted(5, identical) == []  # no noise: nothing more to learn


def test_a_cached_baseline_runs_only_the_drift_rounds_unless_it_drifted() -> None:
    seen: list[list[float]] = []

    def steady(values: list[float]) -> bool:
        seen.append(values)
        return False

    rule = policy(baseline_rounds=3, drift_check=steady)
    three = runs({"agent": [1.0] * 3, "human": [1.0] * 3, "baseline": [7.0] * 3})
    assert rule.wanted(2, runs({"agent": [1.0] * 2, "human": [1.0] * 2, "baseline": [7.0] * 2})) == [
        "agent",
        "baseline",
        "human",
    ]
    assert rule.wanted(3, three) == ["agent", "human"] and seen == [[7.0] * 3] and rule.drifted is False
    moved = policy(baseline_rounds=3, drift_check=lambda values: True)
    assert moved.wanted(3, three) == ["agent", "baseline", "human"] and moved.drifted is True


def test_drift_check_compares_fresh_with_cached_rounds() -> None:
    cached = [100.0, 101.0, 99.0, 100.5, 99.5]
    assert drift_check([100.2, 99.8, 100.7], cached, lower_is_better=True)["drifted"] is False
    shifted = drift_check([120.0, 121.0, 119.0], cached, lower_is_better=True)
    assert shifted["drifted"] is True and shifted["pct"] < -15  # latency up: worse
    assert drift_check([], cached, lower_is_better=True)["drifted"] is True
    # one fresh round (fixed --isobench-rounds=1): only a shift beyond the tolerance is drift
    assert drift_check([101.0], [100.0], lower_is_better=True)["drifted"] is False
    assert drift_check([104.0], [100.0], lower_is_better=True)["drifted"] is True


def test_cache_entries_are_checksummed_and_tampering_is_reported(tmp_path: Path) -> None:
    task = load(write_source_task(tmp_path / "tasks", "toy-sleep"))
    store = MeasurementCache(tmp_path / "cache")
    key = measurement_key(task, "human", warmup=1, backend="local")
    measured = [BenchRun("human", i, "ok", metrics={"avg_latency": 0.02 + i / 1000}) for i in range(3)]
    assert store.store(task, "human", key, measured, {"run_id": "r1", "backend": "local"})
    entry, problem = store.load(task, "human", key)
    assert problem is None and entry is not None
    assert [r.metrics for r in entry.runs] == [r.metrics for r in measured]
    assert entry.info["run_id"] == "r1" and entry.info["rounds"] == 3 and entry.info["measured_at"]
    (path,) = (tmp_path / "cache" / "measurements" / "toy-sleep").glob("human-*.json")
    data = json.loads(path.read_text())
    assert data["checksum"] == checksum(data["content"])
    data["content"]["runs"][0]["metrics"]["avg_latency"] = 1.0
    path.write_text(json.dumps(data))
    entry, problem = store.load(task, "human", key)
    assert entry is None and problem is not None and "checksum does not match" in problem
    assert not path.exists()  # discarded: it is measured again
    assert store.load(task, "human", key) == (None, None)
    failed = [BenchRun("human", 0, "crashed")]
    assert store.store(task, "human", key, failed, {}) is False


def test_the_cache_key_changes_with_the_measurement_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = load(write_source_task(tmp_path / "tasks", "toy-sleep"))
    before = measurement_key(task, "baseline", warmup=1, backend="local")
    assert cache_module.measurement_code_hash() == cache_module.measurement_code_hash()
    monkeypatch.setattr(cache_module, "measurement_code_hash", lambda: "edited")
    assert measurement_key(task, "baseline", warmup=1, backend="local") != before


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_source_task(pytester.path / "tasks", "toy-one")
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    return pytester


def test_rounds_default_to_auto_and_a_number_fixes_them(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--collect-only", "--isobench-agent=noop")
    result.stdout.fnmatch_lines(["isobench: agent=noop backend=local rounds=auto(5-20) *"])
    result = suite.runpytest("--collect-only", "--isobench-agent=noop", "--isobench-max-rounds=9")
    result.stdout.fnmatch_lines(["isobench: * rounds=auto(5-9) *"])
    result = suite.runpytest("--collect-only", "--isobench-agent=noop", "--isobench-rounds=4")
    result.stdout.fnmatch_lines(["isobench: * rounds=4 *"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--isobench-rounds=0"], "*--isobench-rounds: '0' must be at least 1 (or auto)*"),
        (["--isobench-rounds=many"], "*--isobench-rounds: 'many' is not a valid int (nor auto)*"),
        (
            ["--isobench-min-rounds=8", "--isobench-max-rounds=6"],
            "*--isobench-max-rounds (6) is below --isobench-min-rounds (8): raise the maximum*",
        ),
    ],
)
def test_bad_rounds_options_are_usage_errors(suite: pytest.Pytester, args: list[str], message: str) -> None:
    result = suite.runpytest("--collect-only", "--isobench-agent=noop", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
