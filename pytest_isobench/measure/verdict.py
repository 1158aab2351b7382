"""The hard (performance) verdict of one agent on one task, by the paper's rule.

The agent is compared with the human on the primary metric through the Hodges-Lehmann estimate of
their ratio (the median of every agent/human pairwise ratio): more than ``BAND_PCT`` percent better
"beats", more than ``BAND_PCT`` worse "worse", otherwise "similar"; a patch that cannot be measured is
"failed". The paper's ratio of medians is recorded next to it. The exact Mann-Whitney interval does
not change the verdict; it flags verdicts that round-to-round noise could flip (``inconclusive``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_isobench.measure import stats

Verdict = Literal["beats", "similar", "worse", "failed"]
FAILURE_REASONS = (
    "patch_does_not_apply",
    "build_failed",
    "benchmark_crashed",
    "no_metrics",
    "timeout",
    "workload_changed",
    "workdir_destroyed",
    "disk_full",
    "disk_limit",
)
BAND_PCT = 5.0
STANDARD_VARIANTS = ("baseline", "human", "agent")
CI_CONFIDENCE = 0.95


class HardVerdict(BaseModel):
    """Verdict plus the numbers behind it; dumps to builtins with ``model_dump(mode="json")``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    pct: float | None  # agent vs human on the primary metric, positive = agent better
    reason: str | None  # failure reason (one of FAILURE_REASONS) when verdict == "failed"
    metric: str
    lower_is_better: bool
    band: float
    medians: dict[str, float | None]  # "baseline" / "human" / "agent" -> median of the rounds
    spread: dict[str, dict[str, float]]  # per variant, stats.spread(...)
    agent_vs_baseline_pct: float | None
    human_vs_baseline_pct: float | None
    ci_pct: list[float] | None  # [lo, hi] exact Mann-Whitney interval of pct (None: see ci_note)
    ci_confidence: float | None  # the interval's achieved coverage (0.968 from 5 vs 5 rounds)
    ci_note: str | None  # why there is no interval, or that the requested confidence was not achievable
    inconclusive: bool  # the interval straddles +band or -band, or there are too few rounds for one
    estimator: str = "hodges-lehmann"
    pct_of_medians: float | None = None  # the paper's figure: percent of median(agent) vs median(human)
    rounds: dict[str, int] = Field(default_factory=dict)  # measured values per variant
    human_vs_baseline_ci_pct: list[float] | None = None
    human_gain_measurable: bool | None = None  # human vs baseline interval lies above 0 (None: no interval)


def classify(pct: float, band: float = BAND_PCT) -> Verdict:
    """The paper's rule: > +band beats, < -band worse, else similar (exactly ±band is similar)."""
    if pct > band:
        return "beats"
    if pct < -band:
        return "worse"
    return "similar"


def hard_verdict(
    metric: str,
    rounds: Mapping[str, Sequence[float]],
    *,
    lower_is_better: bool,
    band: float = BAND_PCT,
    failure: str | None = None,
) -> HardVerdict:
    """Judge the agent against the human from each variant's measured rounds of the primary metric.

    ``failure`` (one of FAILURE_REASONS) makes the verdict "failed" with that reason; so does an
    agent without values ("no_metrics"). Statistics of the variants that were measured are kept
    either way. A non-failed verdict needs the human rounds: without them (or with a non-positive
    human median) this raises ValueError, which the caller reports as an infrastructure error.
    """
    if failure is not None and failure not in FAILURE_REASONS:
        raise ValueError(f"unknown failure reason {failure!r}; expected one of {FAILURE_REASONS}")
    if band < 0 or not math.isfinite(band):
        raise ValueError(f"band must be a finite non-negative percentage, got {band!r}")
    measured = _measured_rounds(rounds)
    medians: dict[str, float | None] = {name: None for name in STANDARD_VARIANTS}
    medians.update({name: stats.median(values) for name, values in measured.items()})
    spreads = {name: stats.spread(values) for name, values in measured.items()}
    human_vs_baseline = _pct_or_none(medians["baseline"], medians["human"], lower_is_better)
    counts = {name: len(values) for name, values in measured.items()}
    gain_ci, gain_measurable = _human_gain(measured, lower_is_better)
    if failure is None and "agent" not in measured:
        failure = "no_metrics"
    if failure is not None:
        return HardVerdict(
            verdict="failed",
            pct=None,
            reason=failure,
            metric=metric,
            lower_is_better=lower_is_better,
            band=band,
            medians=medians,
            spread=spreads,
            agent_vs_baseline_pct=None,
            human_vs_baseline_pct=human_vs_baseline,
            ci_pct=None,
            ci_confidence=None,
            ci_note=None,
            inconclusive=False,
            rounds=counts,
            human_vs_baseline_ci_pct=gain_ci,
            human_gain_measurable=gain_measurable,
        )
    human_median, agent_median = medians["human"], medians["agent"]
    if human_median is None:
        raise ValueError(f"no human rounds for {metric!r}: the agent cannot be judged without them")
    assert agent_median is not None  # "agent" is in measured here
    of_medians = stats.percent_vs(human_median, agent_median, lower_is_better=lower_is_better)
    _require_positive(measured, ("agent", "human"), metric)
    estimate = stats.hodges_lehmann_ratio(measured["agent"], measured["human"], confidence=CI_CONFIDENCE)
    pct = estimate.percent(lower_is_better=lower_is_better)
    ci = estimate.percent_interval(lower_is_better=lower_is_better)
    too_few = estimate.refused is not None and estimate.refused.startswith("too few")
    return HardVerdict(
        verdict=classify(pct, band),
        pct=pct,
        reason=None,
        metric=metric,
        lower_is_better=lower_is_better,
        band=band,
        medians=medians,
        spread=spreads,
        agent_vs_baseline_pct=_pct_or_none(medians["baseline"], agent_median, lower_is_better),
        human_vs_baseline_pct=human_vs_baseline,
        ci_pct=None if ci is None else [ci[0], ci[1]],
        ci_confidence=None if estimate.confidence is None else round(estimate.confidence, 4),
        ci_note=estimate.refused or estimate.note,
        inconclusive=too_few or (ci is not None and _straddles(ci, band)),
        pct_of_medians=of_medians,
        rounds=counts,
        human_vs_baseline_ci_pct=gain_ci,
        human_gain_measurable=gain_measurable,
    )


def noise_pct(verdict: HardVerdict) -> float | None:
    """Half the width of the interval: how far round-to-round noise could move the percentage."""
    if verdict.ci_pct is None:
        return None
    low, high = verdict.ci_pct
    return (high - low) / 2.0


def describe(verdict: HardVerdict) -> str:
    """One line, e.g. "worse -7.4 %, inconclusive after 20 rounds: noise ±9 %"."""
    if verdict.verdict == "failed":
        return f"failed ({verdict.reason})"
    text = f"{verdict.verdict} {verdict.pct:+.1f} %"
    if verdict.inconclusive:
        used = min(verdict.rounds.get("agent", 0), verdict.rounds.get("human", 0))
        noise = noise_pct(verdict)
        why = f"noise ±{noise:.0f} %" if noise is not None else (verdict.ci_note or "no interval")
        text += f", inconclusive after {used} rounds: {why}"
    return text


def _require_positive(measured: Mapping[str, Sequence[float]], names: Sequence[str], metric: str) -> None:
    for name in names:
        if any(value <= 0 for value in measured.get(name, [])):
            raise ValueError(
                f"a non-positive {name!r} round of {metric!r} ({measured[name]}): a zero or negative"
                " value means the measurement is broken"
            )


def _human_gain(
    measured: Mapping[str, Sequence[float]], lower_is_better: bool
) -> tuple[list[float] | None, bool | None]:
    """Interval of human vs baseline, and whether it lies above 0 (the human change is measurably better)."""
    human, baseline = measured.get("human"), measured.get("baseline")
    if not human or not baseline or any(v <= 0 for v in (*human, *baseline)):
        return None, None
    estimate = stats.hodges_lehmann_ratio(human, baseline, confidence=CI_CONFIDENCE)
    interval = estimate.percent_interval(lower_is_better=lower_is_better)
    if interval is not None:
        return [interval[0], interval[1]], interval[0] > 0
    if estimate.refused is not None and estimate.refused.startswith("zero"):
        return None, estimate.percent(lower_is_better=lower_is_better) > 0
    return None, None


def _measured_rounds(rounds: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """Variants that have at least one value; a NaN or infinity is a broken measurement."""
    measured: dict[str, list[float]] = {}
    for name, values in rounds.items():
        data = [float(value) for value in values]
        if any(not math.isfinite(value) for value in data):
            raise ValueError(f"non-finite value in the {name!r} rounds: {data}")
        if data:
            measured[name] = data
    return measured


def _pct_or_none(reference: float | None, value: float | None, lower_is_better: bool) -> float | None:
    """Percent change when both medians exist and the reference is positive (informational only)."""
    if reference is None or value is None or reference <= 0:
        return None
    return stats.percent_vs(reference, value, lower_is_better=lower_is_better)


def _straddles(interval: tuple[float, float], band: float) -> bool:
    """True when +band or -band lies strictly inside the interval: noise could flip the verdict."""
    low, high = interval
    return low < band < high or low < -band < high
