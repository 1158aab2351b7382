"""Paired comparison of two models on the same items: discordant counts and the exact McNemar test.

With 100 GSM8K items an accuracy's standard error is about 4.6 points, so two unpaired accuracies
within 1 point of each other say little. Pairing by item keeps only the items where the two answers
differ: under "no difference" each such item is equally likely to favour either side, so the count
that favours the human is Binomial(discordant, 1/2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


def binomial_tail(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2), exactly."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    return float(sum(math.comb(trials, k) for k in range(successes, trials + 1)) / 2**trials)


@dataclass(frozen=True)
class PairedResult:
    """Items both sides answered, split by who got them right, and the exact McNemar p-values."""

    items: int
    both_right: int
    both_wrong: int
    human_only: int  # the human right, the agent wrong
    agent_only: int  # the agent right, the human wrong
    p_two_sided: float
    p_agent_worse: float  # one-sided: the agent is worse than the human

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(human: Mapping[Any, bool], agent: Mapping[Any, bool]) -> PairedResult:
    """Compare per-item correctness on the items both sides have (by item id)."""
    shared = sorted(set(human) & set(agent), key=str)
    human_only = sum(1 for item in shared if human[item] and not agent[item])
    agent_only = sum(1 for item in shared if agent[item] and not human[item])
    both_right = sum(1 for item in shared if human[item] and agent[item])
    discordant = human_only + agent_only
    worse = binomial_tail(human_only, discordant)
    better = binomial_tail(agent_only, discordant)
    return PairedResult(
        items=len(shared),
        both_right=both_right,
        both_wrong=len(shared) - both_right - discordant,
        human_only=human_only,
        agent_only=agent_only,
        p_two_sided=min(1.0, 2 * min(worse, better)),
        p_agent_worse=worse,
    )
