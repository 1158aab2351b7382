"""Which code runs each kind of check: the built-ins, plus kinds a conftest.py adds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .base import CorrectnessCheck


def builtin_checks() -> dict[str, CorrectnessCheck]:
    """The kinds that ship with the plugin."""
    from .greedy import GreedyEquivalence
    from .lm_eval import LmEvalAccuracy
    from .output import OutputEquivalence

    return {"output": OutputEquivalence(), "greedy": GreedyEquivalence(), "lm_eval": LmEvalAccuracy()}


def check_registry(extra: Iterable[Mapping[str, CorrectnessCheck]] = ()) -> dict[str, CorrectnessCheck]:
    """Built-ins plus what ``pytest_isobench_correctness_checks`` hook implementations return."""
    registry = builtin_checks()
    for mapping in extra:
        registry.update(mapping)
    return registry
