"""Robust statistics over measured rounds: medians, spread, percent change and a bootstrap interval.

The hard verdict compares medians because a single noisy round (a GPU clock dip, a cold cache) moves a
mean but not a median. The bootstrap interval says how much the percent change could move under the
observed round-to-round noise; it is pure Python and seeded so a report can be reproduced exactly.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

# Percent changes are rounded to this many decimals so float noise cannot cross a band edge
# ((1.05 - 1.0) / 1.0 * 100 is 5.000000000000004 unrounded).
PCT_DECIMALS = 9


def median(values: Sequence[float]) -> float:
    """Median of the values; ValueError when there are none."""
    _require_values(values, "median")
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> dict[str, float]:
    """How much the rounds disagree: n, min, max, mean, stdev, iqr and cv_pct.

    ``stdev`` is the sample standard deviation (0 for fewer than two values); ``iqr`` uses linear
    interpolation between order statistics (0 for one value); ``cv_pct`` is stdev / |mean| * 100,
    0 when the mean is 0 (no meaningful relative spread).
    """
    _require_values(values, "spread")
    data = [float(value) for value in values]
    mean = statistics.fmean(data)
    stdev = statistics.stdev(data) if len(data) >= 2 else 0.0
    ordered = sorted(data)
    return {
        "n": float(len(data)),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": mean,
        "stdev": stdev,
        "iqr": _quantile(ordered, 0.75) - _quantile(ordered, 0.25),
        "cv_pct": stdev / abs(mean) * 100.0 if mean else 0.0,
    }


def percent_vs(reference: float, value: float, *, lower_is_better: bool) -> float:
    """Percent by which ``value`` is better than ``reference`` (positive = value better).

    Latency-like (lower is better): (reference - value) / reference * 100; throughput-like:
    (value - reference) / reference * 100, the paper's two formulas. The result is rounded to
    ``PCT_DECIMALS`` decimals.
    """
    if not math.isfinite(reference) or reference <= 0:
        raise ValueError(
            f"percent change needs a positive reference value, got {reference!r}: "
            "a zero or negative reference median means the measurement is broken"
        )
    gain = reference - value if lower_is_better else value - reference
    return round(gain / reference * 100.0, PCT_DECIMALS)


def bootstrap_percent_ci(
    agent: Sequence[float],
    human: Sequence[float],
    *,
    lower_is_better: bool,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of percent_vs(median(human), median(agent)).

    Each list is resampled independently with replacement; a resample whose human median is not
    positive is skipped (there is no percent change against it), and ValueError is raised when every
    resample was skipped. Deterministic for a given seed.
    """
    _require_values(agent, "bootstrap (agent)")
    _require_values(human, "bootstrap (human)")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    rng = random.Random(seed)
    pcts: list[float] = []
    for _ in range(n_resamples):
        agent_median = statistics.median(rng.choices(agent, k=len(agent)))
        human_median = statistics.median(rng.choices(human, k=len(human)))
        if human_median > 0:
            pcts.append(percent_vs(human_median, agent_median, lower_is_better=lower_is_better))
    if not pcts:
        raise ValueError("every bootstrap resample had a non-positive human median; no interval exists")
    pcts.sort()
    tail = (1.0 - confidence) / 2.0
    return _quantile(pcts, tail), _quantile(pcts, 1.0 - tail)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def _require_values(values: Sequence[float], what: str) -> None:
    if len(values) == 0:
        raise ValueError(f"{what} needs at least one value")
