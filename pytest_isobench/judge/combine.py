"""Run the configured judges on one task and combine their verdicts; judge agreement over a run.

Every verdict is kept. The quadrant's soft bit is the majority on "right target" among the judges
that produced a verdict, a tie going to the first of them in the order listed; the report's
categories are those of the first listed judge on the winning side. Nothing here raises for a
judge's trouble: an exception becomes that judge's ``judge_error`` verdict, and with no verdict at
all the task stays ``unscored`` with the reasons.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

from ..pricing import PriceTable, cost_usd, price_table
from .base import (
    DEFAULT_JUDGE_RETRIES,
    DEFAULT_JUDGE_TIMEOUT_S,
    ApproachComparison,
    BottleneckTarget,
    JudgeContext,
    JudgeFactory,
    JudgeInput,
    JudgeReport,
    SoftVerdict,
    judge_registry,
    split_spec,
)
from .cache import VerdictCache, verdict_key
from .prompt import draw_order
from .secrets import redact

NO_CHANGE = "the agent's patch is empty"


def run_judges(
    specs: Sequence[str],
    judge_input: JudgeInput,
    *,
    cache_dir: Path,
    seed: int = 0,
    prices: PriceTable | None = None,
    max_patch_chars: int = 60_000,
    extra_judges: Mapping[str, JudgeFactory] | None = None,
    timeout_s: float = DEFAULT_JUDGE_TIMEOUT_S,
    max_retries: int = DEFAULT_JUDGE_RETRIES,
) -> JudgeReport:
    """Every judge's verdict on one task (from the cache where possible) and the combined decision.

    ``timeout_s`` (seconds per HTTP attempt) and ``max_retries`` bound each built-in model judge: a
    judge endpoint that never answers costs at most ``timeout_s * (max_retries + 1)`` plus backoff.
    """
    registry = judge_registry([extra_judges or {}], timeout_s=timeout_s, max_retries=max_retries)
    table = price_table(prices)
    cache = VerdictCache(cache_dir)
    verdicts: list[SoftVerdict] = []
    for spec in specs:
        if not judge_input.agent_patch.strip():
            verdicts.append(_no_change(spec))
            continue
        ctx = JudgeContext(judge_input, draw_order(seed, spec, judge_input.task_id), max_patch_chars)
        verdicts.append(_one(spec, ctx, registry, cache, table))
    return combine(verdicts)


def _one(
    spec: str,
    ctx: JudgeContext,
    registry: Mapping[str, JudgeFactory],
    cache: VerdictCache,
    prices: PriceTable,
) -> SoftVerdict:
    """One judge's verdict: cached, or asked now, priced, redacted and stored."""
    prefix, arg = split_spec(spec, registry)
    factory = registry.get(prefix)
    if factory is None:
        return SoftVerdict.failed(spec, f"unknown judge {prefix!r}; known: {', '.join(sorted(registry))}")
    try:
        judge = factory(arg)
        version = int(getattr(judge, "prompt_version", 0))
        cacheable = bool(getattr(judge, "cacheable", True))
        key = verdict_key(spec, version, ctx) if cacheable else ""
        if cacheable and (hit := cache.load(key)) is not None:
            return hit.model_copy(update={"judge": spec, "cached": True})
        with warnings.catch_warnings(record=True) as caught:  # recorded, never raised (-W error runs)
            warnings.simplefilter("always")
            verdict = judge.judge(ctx)
        if not isinstance(verdict, SoftVerdict):
            raise TypeError(f"judge returned {type(verdict).__name__}, not a SoftVerdict")
        notes = (*verdict.warnings, *(f"{w.category.__name__}: {w.message}" for w in caught))
        usage = verdict.usage
        if usage.cost_usd is None and usage.calls:
            price = cost_usd(spec, usage.input_tokens, usage.output_tokens, table=prices)
            usage = usage.model_copy(update={"cost_usd": price})
        update = {"judge": spec, "cached": False, "warnings": tuple(dict.fromkeys(notes)), "usage": usage}
        verdict = verdict.model_copy(update=update)
        verdict = SoftVerdict.model_validate_json(redact(verdict.model_dump_json()))
        if cacheable:
            cache.store(key, verdict)
        return verdict
    except Exception as exc:  # a judge never fails or errors the task
        return SoftVerdict.failed(spec, redact(f"{type(exc).__name__}: {exc}")[:600])


def _no_change(spec: str) -> SoftVerdict:
    """An empty agent patch needs no model: nothing was optimised."""
    return SoftVerdict(
        judge=spec,
        bottleneck_target=BottleneckTarget(
            category="no_optimization", human_target="", agent_target="(no change)", rationale=NO_CHANGE
        ),
        approach_comparison=ApproachComparison(category="ineffective", rationale=NO_CHANGE),
        failure_mode="no_change",
    )


def combine(verdicts: Sequence[SoftVerdict]) -> JudgeReport:
    """The majority on right target (ties to the first listed judge with a verdict) and the totals."""
    fresh = [v for v in verdicts if not v.cached]
    totals = {
        "cost_usd": round(sum(v.usage.cost_usd or 0.0 for v in fresh), 8),
        "input_tokens": sum(v.usage.input_tokens for v in fresh),
        "output_tokens": sum(v.usage.output_tokens for v in fresh),
    }
    voting = [v for v in verdicts if v.right_target is not None]
    if not voting:
        reasons = "; ".join(f"{v.judge}: {v.error}" for v in verdicts if v.error) or "no judge configured"
        return JudgeReport(verdicts=tuple(verdicts), error=reasons, **totals)
    yes = sum(1 for v in voting if v.right_target)
    no = len(voting) - yes
    right = yes > no if yes != no else bool(voting[0].right_target)
    winner = next(v for v in voting if v.right_target == right)
    return JudgeReport(
        verdicts=tuple(verdicts),
        bottleneck=winner.bottleneck_target.category if winner.bottleneck_target else None,
        approach=winner.approach_comparison.category if winner.approach_comparison else None,
        right_target=right,
        **totals,
    )


def agreement(rows: Sequence[Sequence[bool | None]]) -> dict[str, float | int | None]:
    """Agreement on right target between judges over many tasks.

    ``rows`` holds, per task, each judge's vote in the same judge order (None: no verdict). For every
    pair of judges only the tasks where both voted count. ``percent_agreement`` and ``cohen_kappa``
    are means over the judge pairs where they are defined (with two judges: that pair's values);
    kappa is undefined (None) when chance agreement is 1, e.g. both judges always said the same thing.
    ``pairs`` is the number of (task, judge pair) comparisons.
    """
    width = max((len(row) for row in rows), default=0)
    percents: list[float] = []
    kappas: list[float] = []
    compared = 0
    for i, j in combinations(range(width), 2):
        both = [
            (bool(row[i]), bool(row[j]))
            for row in rows
            if len(row) > j and row[i] is not None and row[j] is not None
        ]
        if not both:
            continue
        compared += len(both)
        n = len(both)
        observed = sum(a == b for a, b in both) / n
        p_i = sum(a for a, _ in both) / n
        p_j = sum(b for _, b in both) / n
        chance = p_i * p_j + (1 - p_i) * (1 - p_j)
        percents.append(100.0 * observed)
        if chance < 1.0:
            kappas.append((observed - chance) / (1.0 - chance))
    return {
        "judges": width,
        "pairs": compared,
        "percent_agreement": round(sum(percents) / len(percents), 1) if percents else None,
        "cohen_kappa": round(sum(kappas) / len(kappas), 3) if kappas else None,
    }
