"""What a judge gets and returns, the Judge protocol, the registry and judge specs.

A judge decides whether the agent went after the same bottleneck as the human change (the paper's
soft metric). Judges are named by a *spec*: ``overlap``, ``anthropic:MODEL``, ``openai:MODEL``, or a
prefix a conftest.py registers. The models here are what lands in artifacts and the cache, so they are
frozen and reject unknown fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

BottleneckCategory = Literal["same_target", "related_target", "different_target", "no_optimization"]
ApproachCategory = Literal[
    "similar_approach", "valid_alternative", "partial_solution", "ineffective", "other"
]
Order = Literal["human_first", "agent_first"]
RIGHT_TARGET = frozenset({"same_target", "related_target"})
# The model judges' HTTP limits (``--isobench-judge-timeout``/``--isobench-judge-retries``): seconds per
# attempt, and retries after the first attempt.
DEFAULT_JUDGE_TIMEOUT_S = 60.0
DEFAULT_JUDGE_RETRIES = 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JudgeInput(_Frozen):
    """The material of one judgement: the task's description and the two patches.

    ``base_tree`` (the task's base checkout) is optional; the overlap judge uses it to map changed
    lines to the enclosing function or class, and falls back to the diff alone without it.
    """

    task_id: str
    description: str
    human_patch: str
    agent_patch: str
    base_tree: Path | None = None


class BottleneckTarget(_Frozen):
    """Did the agent work on the same bottleneck as the human change?"""

    category: BottleneckCategory
    human_target: str
    agent_target: str
    rationale: str


class ApproachComparison(_Frozen):
    """How the agent's way of optimising compares with the human's."""

    category: ApproachCategory
    rationale: str


class Techniques(_Frozen):
    """Optimisation techniques seen on each side (free labels, e.g. ``kernel_fusion``)."""

    human: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()

    @property
    def overlap(self) -> bool:
        return bool({t.lower() for t in self.human} & {t.lower() for t in self.agent})


class Usage(_Frozen):
    """Tokens and cost of the model calls behind one verdict (a repair is a second call).

    ``cost_usd`` is None when the model has no entry in the price table.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


class SoftVerdict(_Frozen):
    """One judge's answer for one task; ``status == "judge_error"`` carries the reason in ``error``.

    ``warnings`` keeps what the SDK warned about during the call (e.g. a deprecated model): recorded,
    never raised, so a ``-W error`` test run cannot turn them into judge errors.
    """

    judge: str
    status: Literal["ok", "judge_error"] = "ok"
    error: str | None = None
    bottleneck_target: BottleneckTarget | None = None
    approach_comparison: ApproachComparison | None = None
    techniques: Techniques | None = None
    failure_mode: str | None = None
    order: Order | None = None
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    prompt_version: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def right_target(self) -> bool | None:
        """The quadrant's soft bit: same or related target; None without a verdict."""
        if self.status != "ok" or self.bottleneck_target is None:
            return None
        return self.bottleneck_target.category in RIGHT_TARGET

    @classmethod
    def failed(
        cls, judge: str, error: str, *, usage: Usage | None = None, prompt_version: int = 0
    ) -> SoftVerdict:
        return cls(
            judge=judge,
            status="judge_error",
            error=error,
            usage=usage or Usage(),
            prompt_version=prompt_version,
        )


class JudgeReport(_Frozen):
    """Every judge's verdict for one task and the decision the quadrant uses.

    ``bottleneck``/``approach`` are the categories of the first listed judge on the winning side of
    the right-target majority; ``right_target`` is None when no judge produced a verdict (the quadrant
    then stays ``unscored`` and ``error`` says why). Tokens and cost count only calls made in this run
    (cached verdicts keep their original usage but add nothing here).
    """

    verdicts: tuple[SoftVerdict, ...] = ()
    bottleneck: BottleneckCategory | None = None
    approach: ApproachCategory | None = None
    right_target: bool | None = None
    error: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def votes(self) -> list[bool | None]:
        """Right-target vote of each judge, in spec order (a row for ``agreement``)."""
        return [v.right_target for v in self.verdicts]

    def to_wire(self) -> dict[str, object]:
        """Builtins only (for ``judge.json``, user_properties and the JSON report)."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class JudgeContext:
    """What ``run_judges`` hands a judge: the input, the A/B order it drew, and the trim limit."""

    input: JudgeInput
    order: Order
    max_patch_chars: int = 60_000


class Judge(Protocol):
    """Something that compares the agent's patch with the human's.

    ``name`` is the full spec; ``cacheable`` says whether ``run_judges`` may store and reuse its
    ``ok`` verdicts (set it for anything that costs money or time); ``prompt_version`` is part of the
    cache key, so bump it when the judge's behaviour changes. ``judge`` may raise: the caller turns
    any exception into a ``judge_error`` verdict, a judge never fails the task. Example (conftest.py)::

        from pytest_isobench.judge import BottleneckTarget, SoftVerdict

        class Always:
            name, cacheable, prompt_version = "always", False, 1
            def judge(self, ctx):
                target = BottleneckTarget(category="same_target", human_target="?", agent_target="?",
                                          rationale="always")
                return SoftVerdict(judge=self.name, bottleneck_target=target)

        def pytest_isobench_judges():
            return {"always": lambda arg: Always()}
    """

    name: str
    cacheable: bool
    prompt_version: int

    def judge(self, ctx: JudgeContext) -> SoftVerdict: ...


JudgeFactory = Callable[[str | None], Judge]
"""Builds a judge from the part of its spec after ``prefix:`` (None when there is none)."""


def builtin_judges(
    *, timeout_s: float = DEFAULT_JUDGE_TIMEOUT_S, max_retries: int = DEFAULT_JUDGE_RETRIES
) -> dict[str, JudgeFactory]:
    """The judges that ship with the plugin, keyed by spec prefix.

    ``timeout_s`` (per HTTP attempt) and ``max_retries`` go to the model judges' SDK clients. The
    SDK-backed factories import their SDK only when called: an overlap-only run (and plugin start-up)
    never pays the seconds it takes to import anthropic and openai.
    """
    from .overlap import OverlapJudge

    def anthropic(arg: str | None) -> Judge:
        from .anthropic_judge import AnthropicJudge

        return AnthropicJudge.create(arg, timeout_s=timeout_s, max_retries=max_retries)

    def openai(arg: str | None) -> Judge:
        from .openai_judge import OpenAIJudge

        return OpenAIJudge.create(arg, timeout_s=timeout_s, max_retries=max_retries)

    return {"overlap": OverlapJudge.create, "anthropic": anthropic, "openai": openai}


def judge_registry(
    extra: Iterable[Mapping[str, JudgeFactory]] = (),
    *,
    timeout_s: float = DEFAULT_JUDGE_TIMEOUT_S,
    max_retries: int = DEFAULT_JUDGE_RETRIES,
) -> dict[str, JudgeFactory]:
    """Built-ins plus those a ``pytest_isobench_judges`` hook returns (later ones win)."""
    registry = builtin_judges(timeout_s=timeout_s, max_retries=max_retries)
    for mapping in extra:
        registry.update(mapping)
    return registry


# How each built-in is written; a spec with a model needs the part after the colon, overlap takes none.
SPEC_FORMS = {"overlap": "overlap", "anthropic": "anthropic:MODEL", "openai": "openai:MODEL"}
_NEEDS_ARG = frozenset({"anthropic", "openai"})
_NO_ARG = frozenset({"overlap"})


def split_spec(spec: str, known: Iterable[str] = ()) -> tuple[str, str | None]:
    """``prefix:arg`` → (prefix, arg); a registered name that itself contains a colon stays whole."""
    if spec in set(known):
        return spec, None
    prefix, sep, arg = spec.partition(":")
    return prefix, (arg if sep else None)


def parse_judge_specs(value: str | Sequence[str] | None, *, known: Iterable[str] = ()) -> list[str]:
    """``"a,b"`` or a list → the specs in order; empty or ``none`` → no judge.

    ``known`` adds prefixes registered by conftest.py files. Raises ValueError naming the bad spec and
    the valid forms (an unknown prefix, a missing or superfluous model, a spec listed twice).
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [part for v in value for part in v.split(",")]
    specs = [item.strip() for item in items if item.strip()]
    if specs == ["none"]:
        return []
    extra = set(known)
    prefixes = set(SPEC_FORMS) | extra
    forms = ", ".join([*SPEC_FORMS.values(), *sorted(extra - set(SPEC_FORMS))])
    seen: set[str] = set()
    for spec in specs:
        prefix, arg = split_spec(spec, extra)
        if prefix not in prefixes:
            raise ValueError(f"judge spec {spec!r}: unknown judge {prefix!r}; valid forms: {forms}")
        if prefix in _NEEDS_ARG and prefix not in extra and not (arg or "").strip():
            raise ValueError(
                f"judge spec {spec!r}: missing model; write {SPEC_FORMS[prefix]} (valid forms: {forms})"
            )
        if prefix in _NO_ARG and prefix not in extra and arg is not None:
            raise ValueError(f"judge spec {spec!r}: {prefix} takes no argument (valid forms: {forms})")
        if spec in seen:
            raise ValueError(f"judge spec {spec!r} is listed twice (each judge votes once)")
        seen.add(spec)
    return specs
