"""Robust statistics over measured rounds: medians, spread, percent change and intervals.

The hard verdict's point estimate is the Hodges-Lehmann estimate of the agent/human ratio (the median
of every pairwise ratio, i.e. of the pairwise differences of log values), with the distribution-free
interval that inverts the exact Mann-Whitney test. A single noisy round (a GPU clock dip, a cold cache)
moves a mean but barely moves either; unlike percentile bootstraps the interval's coverage is exact for
any number of rounds, and it says which confidence it achieved (3 vs 3 rounds cannot reach 95 %).
The older bootstrap interval of the ratio of medians is kept for comparison; everything is pure Python.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

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


# Beyond this many pairs (e.g. 40 vs 40 rounds) the exact distribution costs seconds; the normal
# approximation of U is then within a rank of it.
EXACT_LIMIT = 1600
# An interval from fewer rounds than this per side is refused: it says nothing about the noise.
MIN_INTERVAL_ROUNDS = 3


@cache
def mann_whitney_counts(m: int, n: int) -> tuple[int, ...]:
    """Exact null distribution of the Mann-Whitney U for samples of m and n: counts of U = 0 .. m*n.

    The counts are the coefficients of the Gaussian binomial coefficient [m+n choose m]_q; they sum
    to C(m+n, m). Built by the recursion c(m, n, u) = c(m-1, n, u-n) + c(m, n-1, u).
    """
    if m < 0 or n < 0:
        raise ValueError(f"sample sizes must be non-negative, got {m} and {n}")
    if m == 0 or n == 0:
        return (1,)
    fewer_x = mann_whitney_counts(m - 1, n)  # U shifts by n when the largest value is an x
    fewer_y = mann_whitney_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, count in enumerate(fewer_x):
        counts[u + n] += count
    for u, count in enumerate(fewer_y):
        counts[u] += count
    return tuple(counts)


def mann_whitney_rank(m: int, n: int, confidence: float) -> tuple[int, float]:
    """(k, achieved confidence) of the interval [D(k), D(m*n + 1 - k)] of the sorted pairwise differences.

    k is the largest whose coverage 1 - 2 P(U <= k - 1) is at least ``confidence``; when even k = 1
    (the full range of differences) falls short, k = 1 and its lower coverage is what is achieved.
    """
    if m < 1 or n < 1:
        raise ValueError(f"an interval needs values on both sides, got {m} and {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if m * n > EXACT_LIMIT:
        return _normal_rank(m, n, confidence)
    counts = mann_whitney_counts(m, n)
    total = math.comb(m + n, m)
    best_k, best_cover = 1, 1.0 - 2.0 * counts[0] / total
    below = 0  # number of arrangements with U <= k - 1
    for k in range(1, (m * n) // 2 + 1):
        below += counts[k - 1]
        cover = 1.0 - 2.0 * below / total
        if cover < confidence:
            break
        best_k, best_cover = k, cover
    return best_k, best_cover


def _normal_rank(m: int, n: int, confidence: float) -> tuple[int, float]:
    """``mann_whitney_rank`` by the normal approximation of U (with continuity correction)."""
    mean, sd = m * n / 2.0, math.sqrt(m * n * (m + n + 1) / 12.0)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    k = max(1, math.floor(mean - z * sd + 0.5))
    cover = 1.0 - 2.0 * statistics.NormalDist().cdf((k - 1 + 0.5 - mean) / sd)
    return k, cover


@dataclass(frozen=True)
class RatioEstimate:
    """Hodges-Lehmann estimate of x/y and its exact Mann-Whitney interval (None + ``refused`` if none)."""

    ratio: float
    interval: tuple[float, float] | None
    confidence: float | None  # achieved coverage of ``interval``
    refused: str | None  # why no interval was given
    note: str | None  # e.g. the requested confidence was not achievable

    def percent(self, *, lower_is_better: bool) -> float:
        return ratio_to_pct(self.ratio, lower_is_better=lower_is_better)

    def percent_interval(self, *, lower_is_better: bool) -> tuple[float, float] | None:
        if self.interval is None:
            return None
        ends = sorted(ratio_to_pct(end, lower_is_better=lower_is_better) for end in self.interval)
        return ends[0], ends[1]


def ratio_to_pct(ratio: float, *, lower_is_better: bool) -> float:
    """Percent by which x is better than y when x/y = ratio, by the paper's two formulas.

    Throughput-like: (x - y) / y * 100 = (ratio - 1) * 100; latency-like: (y - x) / y * 100 =
    (1 - ratio) * 100; rounded to ``PCT_DECIMALS`` decimals.
    """
    gain = 1.0 - ratio if lower_is_better else ratio - 1.0
    return round(gain * 100.0, PCT_DECIMALS)


def hodges_lehmann_ratio(
    x: Sequence[float], y: Sequence[float], *, confidence: float = 0.95
) -> RatioEstimate:
    """Hodges-Lehmann estimate of the ratio x/y on log values, with its exact distribution-free interval.

    The estimate is the median of the m*n pairwise ratios x_i / y_j (for an even count, the geometric
    mean of the middle two: the median of the log differences). The interval is
    [D(k), D(mn + 1 - k)] of the sorted ratios, k from the exact null distribution of the Mann-Whitney
    U (``mann_whitney_rank``). It is refused (``interval`` None, ``refused`` says why) with fewer than
    ``MIN_INTERVAL_ROUNDS`` values on either side, or when it has zero width (identical rounds: no
    noise was observed, so there is nothing to state a confidence about). Every value must be positive.
    """
    _require_values(x, "Hodges-Lehmann (x)")
    _require_values(y, "Hodges-Lehmann (y)")
    if any(not (math.isfinite(v) and v > 0) for v in (*x, *y)):
        raise ValueError("a ratio estimate needs positive finite values; a zero or negative round is broken")
    ratios = sorted(a / b for a in x for b in y)
    count = len(ratios)
    middle = count // 2
    estimate = ratios[middle] if count % 2 else math.sqrt(ratios[middle - 1] * ratios[middle])
    m, n = len(x), len(y)
    if min(m, n) < MIN_INTERVAL_ROUNDS:
        reason = f"too few rounds for an interval ({m} vs {n}; at least {MIN_INTERVAL_ROUNDS} each)"
        return RatioEstimate(estimate, None, None, reason, None)
    k, achieved = mann_whitney_rank(m, n, confidence)
    low, high = ratios[k - 1], ratios[count - k]
    if low == high:
        return RatioEstimate(estimate, None, None, "zero-width interval: the rounds show no noise", None)
    note = None
    if achieved < confidence:
        note = (
            f"{confidence * 100:g} % is not achievable from {m} vs {n} rounds;"
            f" the closest achievable is {achieved * 100:.1f} %"
        )
    return RatioEstimate(estimate, (low, high), achieved, None, note)


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
