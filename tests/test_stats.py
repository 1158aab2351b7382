"""Statistics over measured rounds: medians, spread, percent change, bootstrap interval."""

from __future__ import annotations

import math

import pytest

from pytest_isobench.measure.stats import bootstrap_percent_ci, median, percent_vs, spread


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
