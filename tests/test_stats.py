"""Statistics over rounds: medians, spread, percent change, intervals, the rule on synthetic data."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from pytest_isobench.measure.simulate import lognormal_draw, rates
from pytest_isobench.measure.stats import (
    bootstrap_percent_ci,
    hodges_lehmann_ratio,
    mann_whitney_counts,
    mann_whitney_rank,
    median,
    percent_vs,
    ratio_to_pct,
    spread,
)


def test_median_odd_even_and_unsorted() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.5]) == 7.5


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        median([])


def test_spread_of_four_values() -> None:
    result = spread([4.0, 1.0, 3.0, 2.0])
    assert result["n"] == 4.0
    assert (result["min"], result["max"], result["mean"]) == (1.0, 4.0, 2.5)
    assert result["stdev"] == pytest.approx(1.2909944487)  # sample standard deviation
    assert result["iqr"] == pytest.approx(1.5)  # 3.25 - 1.75, linear interpolation
    assert result["cv_pct"] == pytest.approx(1.2909944487 / 2.5 * 100)


def test_spread_of_one_value_has_no_variation() -> None:
    assert spread([9.0]) == {
        "n": 1.0,
        "min": 9.0,
        "max": 9.0,
        "mean": 9.0,
        "stdev": 0.0,
        "iqr": 0.0,
        "cv_pct": 0.0,
    }


def test_spread_with_zero_mean_reports_zero_cv() -> None:
    result = spread([-1.0, 1.0])
    assert result["stdev"] == pytest.approx(math.sqrt(2))
    assert result["cv_pct"] == 0.0


def test_spread_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        spread([])


def test_percent_vs_throughput_like_positive_means_value_higher() -> None:
    assert percent_vs(100.0, 110.0, lower_is_better=False) == 10.0
    assert percent_vs(100.0, 90.0, lower_is_better=False) == -10.0


def test_percent_vs_latency_like_positive_means_value_lower() -> None:
    assert percent_vs(200.0, 150.0, lower_is_better=True) == 25.0
    assert percent_vs(200.0, 250.0, lower_is_better=True) == -25.0


def test_percent_vs_rounds_away_float_noise() -> None:
    # Unrounded these are 5.000000000000004 and -5.000000000000004.
    assert percent_vs(1.0, 1.05, lower_is_better=False) == 5.0
    assert percent_vs(1.0, 1.05, lower_is_better=True) == -5.0


@pytest.mark.parametrize("reference", [0.0, -3.0, math.nan, math.inf])
def test_percent_vs_rejects_unusable_reference(reference: float) -> None:
    with pytest.raises(ValueError, match="positive reference"):
        percent_vs(reference, 1.0, lower_is_better=False)


AGENT = [101.0, 97.0, 104.0, 99.0, 108.0, 95.0]
HUMAN = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0]


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    first = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False, seed=7)
    again = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False, seed=7)
    other = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False, seed=8)
    assert first == again
    assert first != other


def test_bootstrap_interval_brackets_the_point_estimate() -> None:
    point = percent_vs(median(HUMAN), median(AGENT), lower_is_better=False)
    low, high = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False)
    assert low < point < high
    assert low > -15.0 and high < 15.0  # bounded by the extreme resample medians


def test_bootstrap_direction_follows_lower_is_better() -> None:
    low, high = bootstrap_percent_ci([110.0, 110.0], [100.0, 100.0], lower_is_better=False)
    assert (low, high) == (10.0, 10.0)
    low, high = bootstrap_percent_ci([110.0, 110.0], [100.0, 100.0], lower_is_better=True)
    assert (low, high) == (-10.0, -10.0)


def test_bootstrap_wider_confidence_gives_wider_interval() -> None:
    narrow = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False, confidence=0.5)
    wide = bootstrap_percent_ci(AGENT, HUMAN, lower_is_better=False, confidence=0.99)
    assert wide[0] <= narrow[0] and narrow[1] <= wide[1]
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_bootstrap_skips_resamples_with_zero_human_median() -> None:
    low, high = bootstrap_percent_ci([12.0], [0.0, 10.0, 10.0], lower_is_better=False, n_resamples=500)
    # Resamples whose human median is 0 are skipped; the others have a human median of 10.
    assert (low, high) == (20.0, 20.0)


def test_bootstrap_with_only_zero_human_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="non-positive human median"):
        bootstrap_percent_ci([1.0, 2.0], [0.0, 0.0], lower_is_better=False)


def test_bootstrap_rejects_empty_lists_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="agent"):
        bootstrap_percent_ci([], [1.0], lower_is_better=False)
    with pytest.raises(ValueError, match="human"):
        bootstrap_percent_ci([1.0], [], lower_is_better=False)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_percent_ci([1.0], [1.0], lower_is_better=False, n_resamples=0)
    for confidence in (0.0, 1.0):
        with pytest.raises(ValueError, match="confidence"):
            bootstrap_percent_ci([1.0], [1.0], lower_is_better=False, confidence=confidence)


# --- Hodges-Lehmann with the exact Mann-Whitney interval ---------------------------------------------


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (3, 3), (5, 5), (4, 7), (6, 6)])
def test_mann_whitney_counts_are_the_exact_null_distribution(m: int, n: int) -> None:
    counts = mann_whitney_counts(m, n)
    assert len(counts) == m * n + 1
    assert sum(counts) == math.comb(m + n, m)
    assert counts == counts[::-1]  # U is symmetric about m*n/2
    # Brute force: every way to place the m x-ranks among m + n positions.
    brute = [0] * (m * n + 1)
    for xs in itertools.combinations(range(m + n), m):
        u = sum(1 for x in xs for y in set(range(m + n)) - set(xs) if x > y)
        brute[u] += 1
    assert list(counts) == brute


def test_mann_whitney_rank_reports_the_achieved_confidence() -> None:
    assert mann_whitney_rank(3, 3, 0.95) == (1, pytest.approx(0.9))  # 95 % is out of reach
    assert mann_whitney_rank(5, 5, 0.95) == (3, pytest.approx(1 - 2 * 4 / 252))
    k, cover = mann_whitney_rank(20, 20, 0.95)
    assert cover >= 0.95 and k == 128


def test_hodges_lehmann_is_the_median_pairwise_ratio() -> None:
    estimate = hodges_lehmann_ratio([110.0, 120.0, 100.0], [100.0, 101.0, 99.0])
    ratios = sorted(a / b for a in (110.0, 120.0, 100.0) for b in (100.0, 101.0, 99.0))
    assert estimate.ratio == ratios[4]
    assert estimate.interval == (ratios[0], ratios[-1])
    assert estimate.confidence == pytest.approx(0.9)
    assert estimate.note is not None and "closest achievable is 90.0 %" in estimate.note
    assert estimate.percent(lower_is_better=False) == round((ratios[4] - 1) * 100, 9)
    low, high = estimate.percent_interval(lower_is_better=True) or (0.0, 0.0)
    assert low == round((1 - ratios[-1]) * 100, 9) and high == round((1 - ratios[0]) * 100, 9)


def test_hodges_lehmann_refuses_small_or_zero_width_intervals() -> None:
    few = hodges_lehmann_ratio([1.0, 1.1], [1.0, 1.05, 0.98])
    assert few.interval is None and few.refused is not None
    assert "too few rounds for an interval (2 vs 3" in few.refused
    flat = hodges_lehmann_ratio([2.0] * 4, [1.0] * 4)
    assert flat.ratio == 2.0 and flat.interval is None
    assert flat.refused is not None and "zero-width" in flat.refused
    with pytest.raises(ValueError, match="positive finite"):
        hodges_lehmann_ratio([1.0, 0.0, 1.0], [1.0, 1.0, 1.0])


def test_ratio_to_pct_uses_the_papers_formulas() -> None:
    assert ratio_to_pct(1.05, lower_is_better=False) == 5.0
    assert ratio_to_pct(0.95, lower_is_better=True) == 5.0
    assert ratio_to_pct(1.2, lower_is_better=True) == -20.0


# --- the whole rule on synthetic data with known answers (fixed seeds: exact, repeatable counts) -----


def test_adaptive_rounds_meet_the_targets_at_five_percent_noise() -> None:
    draw = lognormal_draw(5.0)
    same = rates(0.0, draw, trials=200, seed=11)
    gain = rates(8.0, draw, trials=200, seed=12)
    assert same.wrong_pct <= 1.0  # A/A called beats or worse
    assert gain.wrong_pct <= 5.0  # a true +8 % not called beats
    assert 5.0 <= same.mean_rounds <= 20.0 and 5.0 <= gain.mean_rounds <= 20.0


def test_the_old_fixed_five_rounds_miss_far_more_than_adaptive_rounds() -> None:
    draw = lognormal_draw(5.0)
    fixed_same = rates(0.0, draw, trials=200, seed=11, fixed=5)
    fixed_gain = rates(8.0, draw, trials=200, seed=12, fixed=5)
    assert fixed_same.wrong_pct > 5.0 and fixed_gain.wrong_pct > 10.0
    assert fixed_same.mean_rounds == 5.0


def test_outlier_rounds_do_not_flip_an_a_a_pair() -> None:
    # 5 % of rounds 1.5 x slower: mean-based statistics misclassify many A/A pairs here.
    assert rates(0.0, lognormal_draw(3.0, outliers=0.05), trials=200, seed=13).wrong_pct <= 1.0


def test_quiet_measurements_stop_at_the_minimum() -> None:
    clear = rates(30.0, lognormal_draw(1.0), trials=50, seed=14)
    assert clear.wrong_pct == 0.0 and clear.mean_rounds == 5.0 and clear.inconclusive_pct == 0.0


def test_hodges_lehmann_interval_covers_the_true_ratio() -> None:
    rng = random.Random(5)
    draw = lognormal_draw(5.0)
    covered = trials = 0
    for _ in range(300):
        x = [draw(rng, 108.0) for _ in range(5)]
        y = [draw(rng, 100.0) for _ in range(5)]
        estimate = hodges_lehmann_ratio(x, y)
        assert estimate.interval is not None and estimate.confidence is not None
        trials += 1
        covered += estimate.interval[0] <= 1.08 <= estimate.interval[1]
    assert covered / trials >= 0.93  # nominal 96.8 % for 5 vs 5
