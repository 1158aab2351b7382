"""Synthetic run folders for the report tests: every verdict, quadrant, an error, a missing task,
unicode and very long names, patches and judge rationales, as the pipeline writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_isobench.results import Outcome, append_outcome, write_json
from pytest_isobench.scoring import agent_slug

LONG_AGENT = "command:python -m my_agent --model very-long-model-name-for-the-report-" + "x" * 60
UNICODE_TASK = "vllm-ünïcödé-タスク"  # not a valid catalog id, but outcomes may hold anything
LONG_TASK = "sglang-" + "long" * 30

PATCH = """diff --git a/minillm/sampler.py b/minillm/sampler.py
--- a/minillm/sampler.py
+++ b/minillm/sampler.py
@@ -1,3 +1,3 @@
 import heapq
-order = sorted(range(n), key=key)
+order = heapq.nlargest(k, range(n), key=key)
 return order
"""


def detail(pct: float | None, *, inconclusive: bool = False, band: float = 5.0) -> dict[str, Any]:
    return {
        "pct": pct,
        "band": band,
        "ci_pct": None if pct is None else [pct - 3.0, pct + 3.0],
        "inconclusive": inconclusive,
        "rounds": {"agent": 8, "human": 8, "baseline": 5},
        "agent_vs_baseline_pct": None if pct is None else 40.0 + pct,
        "human_vs_baseline_pct": 40.0,
        "human_vs_baseline_ci_pct": [35.0, 45.0],
        "human_gain_measurable": True,
    }


def runs(metric: str, agent: float, human: float, baseline: float) -> dict[str, Any]:
    def variant(name: str, centre: float) -> list[dict[str, Any]]:
        return [
            {"variant": name, "round": i, "status": "ok", "metrics": {metric: centre * (1 + 0.01 * (i - 2))}}
            for i in range(5)
        ]

    return {"runs": {"agent": variant("agent", agent), "human": variant("human", human),
                     "baseline": variant("baseline", baseline)}}  # fmt: skip


def judged(category: str, rationale: str) -> dict[str, Any]:
    verdict = {
        "judge": "overlap",
        "status": "ok",
        "bottleneck_target": {"category": category, "human_target": "a.py:f", "agent_target": "a.py:f",
                              "rationale": rationale},
        "approach_comparison": {"category": "similar_approach", "rationale": "both <b>select</b> top-k"},
    }  # fmt: skip
    return {"specs": ["overlap"], "votes": [category in ("same_target", "related_target")],
            "verdicts": [verdict], "right_target": category in ("same_target", "related_target")}  # fmt: skip


# (task, repo, hard, pct, bottleneck) per agent; None: the task is missing from that run.
RUN_A: list[tuple[str, str, str | None, float | None, str | None, dict[str, Any]]] = [
    ("vllm-aaa", "vllm", "beats", 12.5, "same_target", {}),  # Q1
    ("vllm-bbb", "vllm", "similar", 1.0, "different_target", {"inconclusive": True}),  # Q3
    (
        "vllm-ccc",
        "vllm",
        "worse",
        -20.0,
        "related_target",
        {
            "touches_benchmark": ["benchmarks/benchmark_latency.py"],
            "workload": {"changed": {"completed": {"human": 16, "agent": 8}}},
        },
    ),  # Q2, flagged
    ("vllm-ddd", "vllm", "failed", None, "no_optimization", {"hard_reason": "build_failed"}),  # Q4
    ("vllm-eee", "vllm", "beats", 8.0, None, {}),  # unscored
    ("vllm-fff", "vllm", None, None, None, {"status": "error", "error": "SandboxError: disk full"}),
    (UNICODE_TASK, "vllm", "similar", -2.0, "same_target", {}),
    (LONG_TASK, "sglang", "worse", -7.5, "same_target", {}),
    ("sglang-only-a", "sglang", "beats", 30.0, "same_target", {}),  # missing from run B
]
RUN_B: list[tuple[str, str, str | None, float | None, str | None, dict[str, Any]]] = [
    ("vllm-aaa", "vllm", "worse", -9.0, "same_target", {}),  # Q1 -> Q2
    ("vllm-bbb", "vllm", "similar", 0.5, "different_target", {}),
    ("vllm-ccc", "vllm", "beats", 6.0, "related_target", {}),  # Q2 -> Q1
    ("vllm-ddd", "vllm", "failed", None, None, {"hard_reason": "patch_does_not_apply"}),
    ("vllm-eee", "vllm", "beats", 8.0, None, {}),
    ("vllm-fff", "vllm", "similar", 2.0, "same_target", {}),  # error -> similar
    (UNICODE_TASK, "vllm", "similar", -2.0, "same_target", {}),
    (LONG_TASK, "sglang", "failed", None, "different_target", {"hard_reason": "timeout"}),
    ("sglang-only-b", "sglang", "similar", 3.0, "related_target", {}),  # missing from run A
]


def write_run(root: Path, run_id: str, agent: str, rows: list[tuple[Any, ...]]) -> Path:
    """A run folder with outcomes.jsonl and, per task, outcome.json, patch.diff and judge.json."""
    from pytest_isobench.scoring import quadrant

    run_dir = root / run_id
    for task_id, repo, hard, pct, bottleneck, extra in rows:
        folder = run_dir / task_id / agent_slug(agent)
        folder.mkdir(parents=True)
        fields: dict[str, Any] = {
            "task_id": task_id,
            "repo": repo,
            "agent": agent,
            "run_id": run_id,
            "hard": hard,
            "hard_pct": pct,
            "hard_metric": "avg_latency" if hard else None,
            "bottleneck": bottleneck,
            "quadrant": "unscored" if extra.get("status") == "error" else quadrant(hard, bottleneck),
            "artifacts": str(folder),
            "correctness": "pass" if hard in ("beats", "similar") else None,
        }
        extra = dict(extra)
        workload = extra.pop("workload", None)
        fields.update(extra)
        if hard is not None:
            fields["hard_detail"] = detail(pct, inconclusive=bool(extra.get("inconclusive")))
            fields["measured"] = runs("avg_latency", 0.6, 0.6 * (1 + (pct or 0) / 100), 1.0)
            if workload:
                fields["measured"]["workload"] = workload
        if bottleneck is not None:
            fields["soft"] = judged(bottleneck, f"rationale for {task_id} — ✓ <script>alert(1)</script>")
        if agent.startswith("command:"):
            fields["agent_run"] = {"stop_reason": "time_budget", "turns": 12, "cost_usd": 0.25,
                                   "tokens": {"input": 1000, "output": 200, "cached": 0}}  # fmt: skip
        outcome = Outcome(**fields)
        write_json(folder / "outcome.json", outcome.to_wire())
        (folder / "patch.diff").write_text(PATCH, encoding="utf-8")
        if outcome.soft:
            (folder / "judge.json").write_text(json.dumps(outcome.soft), encoding="utf-8")
        append_outcome(run_dir, outcome)
    return run_dir


def two_runs(root: Path) -> tuple[Path, Path]:
    """Run A (agent ``alpha``) and run B (a very long command agent), tasks partly overlapping."""
    return write_run(root, "run-a", "alpha", RUN_A), write_run(root, "run-b", LONG_AGENT, RUN_B)
