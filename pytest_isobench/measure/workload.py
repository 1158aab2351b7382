"""The benchmark's workload must be the same for the agent as for the human.

A benchmark prints what it did besides how fast it was: completed requests, input and output
tokens, prompts processed (``parsers.WORKLOAD_KEYS``). An agent whose engine stops after fewer
tokens, drops requests or truncates prompts looks faster on every throughput and latency figure;
comparing these figures with the human's catches it: hard verdict ``failed``, reason
``workload_changed``.

Request and prompt counts and input tokens are deterministic for a seeded benchmark and must be
equal. Output token counts may move a little between runs on GPUs (a greedy decode can end at EOS a
token earlier when batching changes the floating-point order), so they may differ by up to
``OUTPUT_TOLERANCE`` of the human's median.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .parsers import WORKLOAD_KEYS, workload
from .runner import BenchRun
from .stats import median

# Figures that depend on how many tokens the engine generated (relative tolerance); the rest exact.
OUTPUT_TOLERANCE = 0.01
OUTPUT_FIGURES = frozenset(
    {"total_output_tokens", "total_output_tokens_retokenized", "total_num_output_tokens", "total_num_tokens"}
)


@dataclass(frozen=True)
class WorkloadCheck:
    """Median workload figures of the human and the agent, and the ones that differ."""

    human: dict[str, float]
    agent: dict[str, float]
    changed: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"human": self.human, "agent": self.agent, "changed": self.changed}

    def message(self) -> str:
        """``completed 16 -> 8, total_output_tokens 256 -> 128`` (human -> agent)."""
        return ", ".join(f"{key} {v['human']:g} -> {_text(v['agent'])}" for key, v in self.changed.items())


def _text(value: float | None) -> str:
    return "missing" if value is None else f"{value:g}"


def median_workload(runs: Sequence[BenchRun]) -> dict[str, float]:
    """Per workload figure, its median over the measured (non-warm-up) successful runs."""
    measured = [workload(run.metrics) for run in runs if run.round >= 0 and run.status == "ok"]
    keys = sorted({key for figures in measured for key in figures})
    return {key: median([f[key] for f in measured if key in f]) for key in keys}


def check_workload(runs: Mapping[str, Sequence[BenchRun]]) -> WorkloadCheck | None:
    """Compare the agent's workload with the human's; None when either has no measured run."""
    human_runs, agent_runs = runs.get("human", []), runs.get("agent", [])
    if not any(r.status == "ok" and r.round >= 0 for r in human_runs):
        return None
    if not any(r.status == "ok" and r.round >= 0 for r in agent_runs):
        return None
    human, agent = median_workload(human_runs), median_workload(agent_runs)
    changed: dict[str, dict[str, float | None]] = {}
    for key, expected in human.items():
        got = agent.get(key)
        tolerance = OUTPUT_TOLERANCE * abs(expected) if key in OUTPUT_FIGURES else 0.0
        if got is None or abs(got - expected) > tolerance:
            changed[key] = {"human": expected, "agent": got}
    return WorkloadCheck(human, agent, changed)


__all__ = ["OUTPUT_TOLERANCE", "WORKLOAD_KEYS", "WorkloadCheck", "check_workload", "median_workload"]
