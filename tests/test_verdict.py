"""The hard verdict: the paper's ±5 % rule on the Hodges-Lehmann estimate, failures, the inconclusive flag."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from pytest_isobench.measure import stats
from pytest_isobench.measure.verdict import (
    BAND_PCT,
    FAILURE_REASONS,
    HardVerdict,
    classify,
    describe,
    hard_verdict,
)


def test_band_is_the_papers_five_percent() -> None:
    assert BAND_PCT == 5.0


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        (5.0, "similar"),
        (5.01, "beats"),
        (-5.0, "similar"),
        (-5.01, "worse"),
        (0.0, "similar"),
        (80.0, "beats"),
    ],
)
def test_classify_band_edges(pct: float, expected: str) -> None:
    assert classify(pct) == expected


def test_classify_with_another_band() -> None:
    assert classify(5.01, band=10.0) == "similar"
    assert classify(10.5, band=10.0) == "beats"
    assert classify(-10.5, band=10.0) == "worse"


def rounds(human: float, agent: float, baseline: float | None = None) -> dict[str, list[float]]:
    result = {"human": [human] * 3, "agent": [agent] * 3}
    if baseline is not None:
        result["baseline"] = [baseline] * 3
    return result


@pytest.mark.parametrize(
    ("agent", "pct", "expected"),
    [(105.0, 5.0, "similar"), (105.01, 5.01, "beats"), (95.0, -5.0, "similar"), (94.99, -5.01, "worse")],
)
def test_throughput_band_edges(agent: float, pct: float, expected: str) -> None:
    result = hard_verdict("output_throughput", rounds(100.0, agent), lower_is_better=False)
    assert result.pct == pct
    assert result.verdict == expected


@pytest.mark.parametrize(
    ("agent", "pct", "expected"),
    [(95.0, 5.0, "similar"), (94.99, 5.01, "beats"), (105.0, -5.0, "similar"), (105.01, -5.01, "worse")],
)
def test_latency_band_edges(agent: float, pct: float, expected: str) -> None:
    result = hard_verdict("mean_ttft_ms", rounds(100.0, agent), lower_is_better=True)
    assert result.pct == pct
    assert result.verdict == expected


def test_float_noise_does_not_cross_the_band() -> None:
    # (1.05 - 1.0) / 1.0 * 100 is 5.000000000000004 in floating point.
    result = hard_verdict("request_throughput", rounds(1.0, 1.05), lower_is_better=False)
    assert result.pct == 5.0
    assert result.verdict == "similar"


def test_verdict_uses_medians_not_means() -> None:
    result = hard_verdict(
        "output_throughput",
        {"human": [100.0, 100.0, 100.0], "agent": [120.0, 120.0, 10.0]},  # one broken round
        lower_is_better=False,
    )
    assert result.medians["agent"] == 120.0
    assert result.pct == 20.0
    assert result.verdict == "beats"


def test_full_record_with_baseline() -> None:
    data = {"baseline": [200.0, 210.0, 190.0], "human": [150.0, 155.0, 145.0], "agent": [120.0, 118.0, 122.0]}
    result = hard_verdict("mean_ttft_ms", data, lower_is_better=True)
    assert result.verdict == "beats"
    assert result.pct == 20.0  # (150 - 120) / 150
    assert result.reason is None
    assert result.metric == "mean_ttft_ms"
    assert result.lower_is_better is True
    assert result.band == 5.0
    assert result.medians == {"baseline": 200.0, "human": 150.0, "agent": 120.0}
    assert result.agent_vs_baseline_pct == 40.0
    assert result.human_vs_baseline_pct == 25.0
    assert result.spread == {name: stats.spread(values) for name, values in data.items()}
    assert result.pct_of_medians == 20.0
    assert result.rounds == {"baseline": 3, "human": 3, "agent": 3}
    # 3 vs 3 rounds cannot reach 95 %: the widest interval (the range of pairwise ratios) has 90 %.
    assert result.ci_confidence == 0.9
    assert result.ci_note is not None and "95 % is not achievable from 3 vs 3" in result.ci_note
    assert result.ci_pct == pytest.approx([(1 - 122 / 145) * 100, (1 - 118 / 155) * 100])
    assert result.ci_pct is not None and result.ci_pct[0] <= result.pct <= result.ci_pct[1]
    assert result.human_vs_baseline_ci_pct is not None and result.human_vs_baseline_ci_pct[0] > 0
    assert result.human_gain_measurable is True


def test_without_baseline_the_baseline_figures_are_none() -> None:
    result = hard_verdict("output_throughput", rounds(100.0, 110.0), lower_is_better=False)
    assert result.medians == {"baseline": None, "human": 100.0, "agent": 110.0}
    assert result.agent_vs_baseline_pct is None
    assert result.human_vs_baseline_pct is None
    assert set(result.spread) == {"human", "agent"}


@pytest.mark.parametrize("reason", FAILURE_REASONS)
def test_each_failure_reason_fails_and_keeps_reference_statistics(reason: str) -> None:
    data = {"baseline": [80.0, 82.0], "human": [100.0, 98.0], "agent": []}
    result = hard_verdict("output_throughput", data, lower_is_better=False, failure=reason)
    assert result.verdict == "failed"
    assert result.reason == reason
    assert result.pct is None
    assert result.ci_pct is None
    assert result.inconclusive is False
    assert result.agent_vs_baseline_pct is None
    assert result.medians == {"baseline": 81.0, "human": 99.0, "agent": None}
    assert set(result.spread) == {"baseline", "human"}
    assert result.human_vs_baseline_pct == pytest.approx(22.222222222)


def test_failure_wins_over_agent_values() -> None:
    result = hard_verdict("output_throughput", rounds(100.0, 150.0), lower_is_better=False, failure="timeout")
    assert result.verdict == "failed"
    assert result.reason == "timeout"
    assert result.pct is None


def test_failure_without_human_is_still_a_failure() -> None:
    result = hard_verdict("output_throughput", {}, lower_is_better=False, failure="build_failed")
    assert result.verdict == "failed"
    assert result.medians == {"baseline": None, "human": None, "agent": None}


def test_unknown_failure_reason_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown failure reason"):
        hard_verdict("output_throughput", rounds(100.0, 100.0), lower_is_better=False, failure="oops")


@pytest.mark.parametrize("data", [{"human": [100.0]}, {"human": [100.0], "agent": []}])
def test_no_agent_values_is_no_metrics(data: dict[str, list[float]]) -> None:
    result = hard_verdict("mean_ttft_ms", data, lower_is_better=True)
    assert result.verdict == "failed"
    assert result.reason == "no_metrics"
    assert result.medians["human"] == 100.0


@pytest.mark.parametrize("data", [{"agent": [100.0]}, {"agent": [100.0], "human": []}])
def test_missing_human_is_an_infrastructure_error(data: dict[str, list[float]]) -> None:
    with pytest.raises(ValueError, match="no human rounds"):
        hard_verdict("mean_ttft_ms", data, lower_is_better=True)


def test_zero_human_median_is_an_infrastructure_error() -> None:
    with pytest.raises(ValueError, match="positive reference"):
        hard_verdict("output_throughput", rounds(0.0, 10.0), lower_is_better=False)


def test_non_finite_rounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        hard_verdict("output_throughput", {"human": [100.0], "agent": [float("nan")]}, lower_is_better=False)


def test_inconclusive_when_the_interval_straddles_the_band() -> None:
    data = {"human": [100.0] * 5, "agent": [98.0, 100.0, 104.0, 108.0, 112.0]}
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result.pct == 4.0
    assert result.verdict == "similar"  # the rule itself is unchanged
    assert result.ci_pct is not None
    low, high = result.ci_pct
    # 5 vs 5 rounds: the 3rd smallest and 3rd largest of the 25 pairwise ratios, 96.8 % coverage.
    assert (low, high) == (-2.0, 12.0)
    assert result.ci_confidence == 0.9683 and result.ci_note is None
    assert result.inconclusive is True


def test_inconclusive_on_the_negative_edge_for_latency() -> None:
    data = {"human": [100.0] * 5, "agent": [98.0, 100.0, 104.0, 108.0, 112.0]}
    result = hard_verdict("mean_ttft_ms", data, lower_is_better=True)
    assert result.pct == -4.0
    assert result.verdict == "similar"
    assert result.inconclusive is True


def test_conclusive_when_the_interval_is_clear_of_the_band() -> None:
    data = {"human": [100.0, 101.0, 99.0, 100.0, 100.0], "agent": [130.0, 131.0, 132.0, 133.0, 134.0]}
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result.verdict == "beats"
    assert result.ci_pct is not None
    assert result.ci_pct[0] > 5.0
    assert result.inconclusive is False


def test_interval_is_the_exact_mann_whitney_interval_of_pairwise_ratios() -> None:
    data = {
        "human": [100.0, 102.0, 98.0, 101.0, 99.0, 100.0],
        "agent": [101.0, 97.0, 104.0, 99.0, 108.0, 95.0],
    }
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result == hard_verdict("output_throughput", data, lower_is_better=False)  # no randomness
    ratios = sorted(a / h for a in data["agent"] for h in data["human"])
    k, cover = stats.mann_whitney_rank(6, 6, 0.95)
    assert k == 6  # P(U <= 5) = 19/924 for 6 vs 6 rounds
    assert cover == pytest.approx(1 - 2 * 19 / 924)
    assert result.ci_pct == pytest.approx([(ratios[k - 1] - 1) * 100, (ratios[-k] - 1) * 100])
    assert result.pct == pytest.approx((math.sqrt(ratios[17] * ratios[18]) - 1) * 100)


def test_identical_rounds_give_no_interval_and_say_why() -> None:
    result = hard_verdict("output_throughput", rounds(100.0, 90.0), lower_is_better=False)
    assert result.verdict == "worse" and result.pct == -10.0
    assert result.ci_pct is None and result.ci_confidence is None
    assert result.ci_note is not None and "zero-width" in result.ci_note
    assert result.inconclusive is False  # no noise was seen: the estimate is exact


def test_fewer_than_three_rounds_give_no_interval_and_are_inconclusive() -> None:
    data = {"human": [100.0, 101.0], "agent": [103.0, 104.0]}
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result.verdict == "similar"
    assert result.ci_pct is None and result.ci_note is not None and "too few rounds" in result.ci_note
    assert result.inconclusive is True


def test_a_robust_estimate_ignores_one_wild_round_in_the_human() -> None:
    data = {"human": [100.0, 100.5, 99.5, 100.0, 1000.0], "agent": [110.0, 110.5, 109.5, 110.0, 110.0]}
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result.verdict == "beats" and 9.0 < (result.pct or 0) < 11.0


def test_human_gain_not_measurable_when_human_and_baseline_overlap() -> None:
    data = {
        "baseline": [100.0, 104.0, 97.0, 101.0, 99.0],
        "human": [101.0, 98.0, 103.0, 100.0, 99.5],
        "agent": [100.0, 101.0, 99.0, 100.0, 100.5],
    }
    result = hard_verdict("output_throughput", data, lower_is_better=False)
    assert result.human_vs_baseline_ci_pct is not None
    low, high = result.human_vs_baseline_ci_pct
    assert low < 0 < high
    assert result.human_gain_measurable is False


def test_non_positive_rounds_are_a_broken_measurement() -> None:
    with pytest.raises(ValueError, match="non-positive 'agent' round"):
        hard_verdict(
            "output_throughput", {"human": [100.0] * 3, "agent": [100.0, 0.0, 100.0]}, lower_is_better=False
        )


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (
            {"human": [100.0] * 5, "agent": [98.0, 100.0, 104.0, 108.0, 112.0]},
            "similar +4.0 %, inconclusive after 5 rounds: noise ±7 %",
        ),
        ({"human": [100.0] * 3, "agent": [90.0] * 3}, "worse -10.0 %"),
        (
            {"human": [100.0] * 2, "agent": [90.0, 91.0]},
            "worse -9.5 %, inconclusive after 2 rounds: too few rounds",
        ),
    ],
)
def test_describe_says_inconclusive_with_rounds_and_noise(data: dict[str, list[float]], text: str) -> None:
    assert describe(hard_verdict("output_throughput", data, lower_is_better=False)).startswith(text)


def test_dumps_to_builtins_and_round_trips() -> None:
    result = hard_verdict("mean_ttft_ms", rounds(100.0, 90.0, baseline=120.0), lower_is_better=True)
    dumped = result.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped["verdict"] == "beats"
    assert dumped["ci_pct"] is None and "zero-width" in dumped["ci_note"]
    assert HardVerdict.model_validate(dumped) == result
    failed = hard_verdict("mean_ttft_ms", {"human": [1.0]}, lower_is_better=True).model_dump(mode="json")
    assert json.loads(json.dumps(failed)) == failed


def test_model_is_frozen_and_strict() -> None:
    result = hard_verdict("mean_ttft_ms", rounds(100.0, 90.0), lower_is_better=True)
    with pytest.raises(ValidationError):
        result.verdict = "worse"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        HardVerdict.model_validate({**result.model_dump(), "surprise": 1})
