"""Soft metrics: judges that decide whether the agent targeted the human change's bottleneck.

``run_judges(specs, JudgeInput(...), cache_dir=...)`` returns a ``JudgeReport`` with every judge's
``SoftVerdict`` and the majority decision the quadrant uses; ``agreement`` summarises how often the
judges agreed over a run. Built-in specs: ``overlap``, ``anthropic:MODEL``, ``openai:MODEL``.
"""

from __future__ import annotations

from ..pricing import DEFAULT_PRICES, load_prices, price_table
from .base import (
    RIGHT_TARGET,
    ApproachCategory,
    ApproachComparison,
    BottleneckCategory,
    BottleneckTarget,
    Judge,
    JudgeContext,
    JudgeFactory,
    JudgeInput,
    JudgeReport,
    SoftVerdict,
    Techniques,
    Usage,
    builtin_judges,
    judge_registry,
    parse_judge_specs,
)
from .combine import agreement, combine, run_judges
from .prompt import PROMPT_VERSION
from .secrets import KEY_ENV_VARS, redact

__all__ = [
    "DEFAULT_PRICES",
    "KEY_ENV_VARS",
    "PROMPT_VERSION",
    "RIGHT_TARGET",
    "ApproachCategory",
    "ApproachComparison",
    "BottleneckCategory",
    "BottleneckTarget",
    "Judge",
    "JudgeContext",
    "JudgeFactory",
    "JudgeInput",
    "JudgeReport",
    "SoftVerdict",
    "Techniques",
    "Usage",
    "agreement",
    "builtin_judges",
    "combine",
    "judge_registry",
    "load_prices",
    "parse_judge_specs",
    "price_table",
    "redact",
    "run_judges",
]
