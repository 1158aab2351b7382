"""The model judges' prompt, the answer schema, patch trimming and the A/B order.

The judge sees the two patches as "Patch A" and "Patch B" in an order drawn per (seed, judge, task),
and is told which one is the reference (the merged human change). The answer names patches only by
label; ``answer_to_verdict`` maps it back to human/agent, and the order is recorded with the verdict
so position bias can be measured. Bump ``PROMPT_VERSION`` whenever the prompt or schema changes: it
is part of the cache key.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .base import (
    ApproachCategory,
    ApproachComparison,
    BottleneckCategory,
    BottleneckTarget,
    JudgeContext,
    Order,
    SoftVerdict,
    Techniques,
    Usage,
)

PROMPT_VERSION = 1
TOOL_NAME = "submit_verdict"
FailureMode = Literal[
    "not_applicable",
    "localization_failure",
    "incomplete_implementation",
    "approach_failure",
    "complexity_avoidance",
    "other",
]

SYSTEM_PROMPT = """\
You are a strict, careful reviewer of performance optimisations in LLM-inference code (vLLM, SGLang).
You compare two patches made against the same base commit for the same performance task. One of them
is the reference: the change the project's maintainers merged. The other is a candidate. Judge what
each patch changes, not how it is described, and do not prefer a patch because of its position.
Reply only through the requested structured output."""

USER_TEMPLATE = """\
# Task description (what the candidate was asked to optimise)
{description}

# Patch A
```diff
{patch_a}
```

# Patch B
```diff
{patch_b}
```

# Which is which
The reference patch (merged upstream) is Patch {reference}. The candidate patch is Patch {candidate}.

# What to return
- bottleneck_target.category: does the candidate target the same performance bottleneck as the reference?
  same_target: the same code path and the same cost; related_target: a closely related cost or code
  path (same component, overlapping functions); different_target: some other part of the system;
  no_optimization: the candidate makes no change that could plausibly improve performance.
  patch_a_target / patch_b_target: one sentence each naming the code and the cost each patch attacks.
- approach_comparison.category, candidate compared with the reference: similar_approach (same
  technique), valid_alternative (a different technique that should also work), partial_solution (part of
  the reference's improvement), ineffective (unlikely to improve performance), other.
- techniques.patch_a / techniques.patch_b: short snake_case labels of the optimisation techniques used,
  e.g. caching, kernel_fusion, vectorization, memory_optimization, avoid_copy, batching, async_overlap,
  algorithmic, low_level, data_structure, other.
- failure_mode of the candidate: not_applicable (it succeeds), localization_failure (wrong place),
  incomplete_implementation, approach_failure (right place, wrong idea), complexity_avoidance (a trivial
  change instead of the real work), other.
Keep every rationale to a few sentences."""

REPAIR_TEMPLATE = """\
Your previous answer did not match the required schema:
{errors}
Answer again with a complete, corrected verdict that matches the schema exactly."""

_DROPPED = frozenset({"default", "title", "description", "$defs"})
TRIM_MARKER = "[isobench: patch trimmed to {kept} of {total} characters; cut: {cut}]"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BottleneckAnswer(_Closed):
    category: BottleneckCategory
    patch_a_target: str
    patch_b_target: str
    rationale: str


class ApproachAnswer(_Closed):
    category: ApproachCategory
    rationale: str


class TechniquesAnswer(_Closed):
    patch_a: list[str]
    patch_b: list[str]


class JudgeAnswer(_Closed):
    """What a model must return (patches by label); every field required, so strict schemas accept it."""

    bottleneck_target: BottleneckAnswer
    approach_comparison: ApproachAnswer
    techniques: TechniquesAnswer
    failure_mode: FailureMode


def answer_schema() -> dict[str, Any]:
    """JSON schema of ``JudgeAnswer`` in OpenAI's strict form (closed objects, all fields required),
    with ``$ref``s inlined: the simplest schema every API and compatible server accepts."""
    raw = JudgeAnswer.model_json_schema()
    schema: dict[str, Any] = _strict(raw, raw.get("$defs", {}))
    return schema


def _strict(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _strict(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        out = {k: _strict(v, defs) for k, v in node.items() if k not in _DROPPED}
        if isinstance(node.get("properties"), dict):  # field names are kept whatever they are
            out["properties"] = {name: _strict(sub, defs) for name, sub in node["properties"].items()}
        if out.get("type") == "object" and "properties" in node:
            out["additionalProperties"] = False
            out["required"] = list(node["properties"])
        return out
    if isinstance(node, list):
        return [_strict(item, defs) for item in node]
    return node


def draw_order(seed: int, spec: str, task_id: str) -> Order:
    """Reference first or candidate first, reproducible per (seed, judge, task), balanced over tasks."""
    digest = hashlib.sha256(f"{spec}\0{task_id}".encode()).digest()
    rng = random.Random(seed ^ int.from_bytes(digest[:8], "big"))
    return "human_first" if rng.random() < 0.5 else "agent_first"


def trim_patch(patch: str, max_chars: int) -> str:
    """``patch`` if it fits, else whole file sections while they fit, then the start of the next one,
    then a marker naming what was cut (files partly or wholly left out, with their line counts)."""
    if len(patch) <= max_chars:
        return patch
    sections = _file_sections(patch)
    kept: list[str] = []
    cut: list[str] = []
    budget = max(0, max_chars - 400)  # room for the marker
    for path, text in sections:
        lines = text.count("\n") + (not text.endswith("\n"))
        if budget >= len(text):
            kept.append(text)
            budget -= len(text)
        elif budget > 200 and not cut:
            head = text[: text.rfind("\n", 0, budget) + 1]
            kept.append(head)
            cut.append(f"{path} after line {head.count(chr(10))} of {lines}")
            budget = 0
        else:
            cut.append(f"{path} (whole file section, {lines} lines)")
    body = "".join(kept)
    listed = "; ".join(cut[:20]) + (f"; and {len(cut) - 20} more files" if len(cut) > 20 else "")
    marker = TRIM_MARKER.format(kept=len(body), total=len(patch), cut=listed)
    return body + ("" if body.endswith("\n") or not body else "\n") + marker + "\n"


def _file_sections(patch: str) -> list[tuple[str, str]]:
    """(path, text) per ``diff --git`` section; text before the first header counts as its own."""
    sections: list[tuple[str, list[str]]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") or not sections:
            path = line.rstrip("\n").split(" b/", 1)[-1] if line.startswith("diff --git ") else "(preamble)"
            sections.append((path, []))
        sections[-1][1].append(line)
    return [(path, "".join(lines)) for path, lines in sections]


def build_prompt(ctx: JudgeContext) -> str:
    """The user message: description, the two trimmed patches in the drawn order, which is which."""
    human = trim_patch(ctx.input.human_patch, ctx.max_patch_chars)
    agent = trim_patch(ctx.input.agent_patch, ctx.max_patch_chars)
    human_first = ctx.order == "human_first"
    return USER_TEMPLATE.format(
        description=ctx.input.description.strip() or "(no description)",
        patch_a=human if human_first else agent,
        patch_b=agent if human_first else human,
        reference="A" if human_first else "B",
        candidate="B" if human_first else "A",
    )


def answer_to_verdict(answer: JudgeAnswer, *, spec: str, order: Order, usage: Usage) -> SoftVerdict:
    """Map the label-based answer back to human/agent."""
    b, t = answer.bottleneck_target, answer.techniques
    human_first = order == "human_first"
    return SoftVerdict(
        judge=spec,
        bottleneck_target=BottleneckTarget(
            category=b.category,
            human_target=b.patch_a_target if human_first else b.patch_b_target,
            agent_target=b.patch_b_target if human_first else b.patch_a_target,
            rationale=b.rationale,
        ),
        approach_comparison=ApproachComparison(
            category=answer.approach_comparison.category, rationale=answer.approach_comparison.rationale
        ),
        techniques=Techniques(
            human=tuple(t.patch_a if human_first else t.patch_b),
            agent=tuple(t.patch_b if human_first else t.patch_a),
        ),
        failure_mode=answer.failure_mode,
        order=order,
        usage=usage,
        prompt_version=PROMPT_VERSION,
    )
