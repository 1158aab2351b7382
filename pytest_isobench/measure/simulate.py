"""Synthetic measurements with a known true effect, judged by the harness's own rounds policy and verdict.

Used by the tests (fixed seeds, known answers) and by ``benchmarks/calibrate.py``: each trial draws
agent and human rounds from a noise model (log-normal with a given coefficient of variation, optionally
with a share of outlier rounds), runs them through ``RoundPolicy`` exactly as ``measure`` would, and
judges the result with ``hard_verdict``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from .runner import BenchRun, RoundPolicy
from .verdict import BAND_PCT, hard_verdict

METRIC = "throughput"


@dataclass(frozen=True)
class Trial:
    verdict: str
    pct: float
    inconclusive: bool
    rounds: int


def lognormal_draw(cv_pct: float, outliers: float = 0.0) -> Callable[[random.Random, float], float]:
    """A draw of one round around ``true``: log-normal with this CV; ``outliers`` of rounds 1.5 × slower."""
    sigma = math.sqrt(math.log(1.0 + (cv_pct / 100.0) ** 2))

    def draw(rng: random.Random, true: float) -> float:
        value = true * math.exp(rng.gauss(-sigma * sigma / 2.0, sigma))
        if outliers and rng.random() < outliers:
            value /= 1.5  # a throughput round hit by a stall
        return value

    return draw


def run_trial(
    rng: random.Random,
    *,
    true_pct: float,
    draw: Callable[[random.Random, float], float],
    fixed: int | None = None,
    min_rounds: int = 5,
    max_rounds: int = 20,
) -> Trial:
    """One synthetic task: throughput-like, human at 100, agent ``true_pct`` % better."""
    truth = {"human": 100.0, "agent": 100.0 * (1.0 + true_pct / 100.0)}
    policy = RoundPolicy(
        metric=METRIC,
        lower_is_better=False,
        band=BAND_PCT,
        fixed=fixed,
        min_rounds=min_rounds,
        max_rounds=max_rounds,
    )
    runs: dict[str, list[BenchRun]] = {"agent": [], "human": []}
    done = 0
    while wanted := policy.wanted(done, runs):
        for variant in rng.sample(wanted, len(wanted)):
            value = draw(rng, truth[variant])
            runs[variant].append(BenchRun(variant, done, "ok", metrics={METRIC: value}))
        done += 1
    values = {v: [r.metrics[METRIC] for r in rs] for v, rs in runs.items()}
    verdict = hard_verdict(METRIC, values, lower_is_better=False)
    return Trial(verdict.verdict, verdict.pct or 0.0, verdict.inconclusive, done)


@dataclass(frozen=True)
class Rates:
    trials: int
    wrong_pct: float  # verdict differs from the true effect's verdict
    inconclusive_pct: float
    mean_rounds: float


def rates(
    true_pct: float,
    draw: Callable[[random.Random, float], float],
    *,
    trials: int,
    seed: int,
    fixed: int | None = None,
    min_rounds: int = 5,
    max_rounds: int = 20,
) -> Rates:
    """Share of trials whose verdict is not the true effect's (±band rule), inconclusive share, rounds."""
    expected = "beats" if true_pct > BAND_PCT else "worse" if true_pct < -BAND_PCT else "similar"
    rng = random.Random(seed)
    results = [
        run_trial(
            rng, true_pct=true_pct, draw=draw, fixed=fixed, min_rounds=min_rounds, max_rounds=max_rounds
        )
        for _ in range(trials)
    ]
    return Rates(
        trials=trials,
        wrong_pct=100.0 * sum(t.verdict != expected for t in results) / trials,
        inconclusive_pct=100.0 * sum(t.inconclusive for t in results) / trials,
        mean_rounds=sum(t.rounds for t in results) / trials,
    )
