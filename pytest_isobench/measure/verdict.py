"""The hard (performance) verdict of one agent on one task, by the paper's rule.

The agent's median on the primary metric is compared with the human's: more than ``BAND_PCT``
percent better "beats", more than ``BAND_PCT`` worse "worse", otherwise "similar"; a patch that
cannot be measured is "failed". The bootstrap interval does not change the verdict; it only flags
verdicts that round-to-round noise could flip (``inconclusive``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

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
    ci95_pct: list[float] | None  # [lo, hi] bootstrap interval of pct
    inconclusive: bool  # the interval straddles +band or -band


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
    seed: int = 0,
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
            ci95_pct=None,
            inconclusive=False,
        )
    human_median, agent_median = medians["human"], medians["agent"]
    if human_median is None:
        raise ValueError(f"no human rounds for {metric!r}: the agent cannot be judged without them")
    assert agent_median is not None  # "agent" is in measured here
    pct = stats.percent_vs(human_median, agent_median, lower_is_better=lower_is_better)
    ci = _interval(measured["agent"], measured["human"], lower_is_better, seed)
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
        ci95_pct=None if ci is None else [ci[0], ci[1]],
        inconclusive=ci is not None and _straddles(ci, band),
    )


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


def _interval(
    agent: Sequence[float], human: Sequence[float], lower_is_better: bool, seed: int
) -> tuple[float, float] | None:
    try:
        return stats.bootstrap_percent_ci(
            agent, human, lower_is_better=lower_is_better, confidence=CI_CONFIDENCE, seed=seed
        )
    except ValueError:  # every resample had a non-positive human median
        return None


def _straddles(interval: tuple[float, float], band: float) -> bool:
    """True when +band or -band lies strictly inside the interval: noise could flip the verdict."""
    low, high = interval
    return low < band < high or low < -band < high
