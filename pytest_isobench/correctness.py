"""Correctness: the optimized code must still give the same answers. Recorded, never a pass/fail gate.

``output`` checks run a command on the human and the agent trees and compare what it prints: a
correct optimization leaves generated output byte-identical. ``lm_eval`` checks (the paper's GSM8K
accuracy within a tolerance) need a GPU engine and are recorded as ``not_run`` here, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .sandbox.base import Sandbox
from .tasks import OutputCheck, Task


def check_correctness(sandbox: Sandbox, task: Task, trees: dict[str, Path], out_dir: Path) -> dict[str, Any]:
    """``status``: pass, fail (outputs differ or the agent's run broke), error, not_run, not_configured."""
    check = task.correctness
    if check is None:
        return {"status": "not_configured"}
    if not isinstance(check, OutputCheck):
        return {
            "status": "not_run",
            "kind": check.kind,
            "reason": "lm-eval checks are not run by this harness yet",
        }
    if "agent" not in trees:
        return {"status": "not_run", "kind": "output", "reason": "the agent's patch did not apply"}
    outputs: dict[str, str] = {}
    for variant in ("human", "agent"):
        tree = trees.get(variant) or sandbox.variant_tree(variant)
        result = sandbox.run(
            check.command,
            cwd=tree,
            env=sandbox.environment(tree),
            timeout_s=check.timeout_s,
            stdout_path=out_dir / f"{variant}.stdout.txt",
            stderr_path=out_dir / f"{variant}.stderr.txt",
        )
        if result.timed_out or result.returncode != 0:
            why = (
                "timed out" if result.timed_out else f"exit code {result.returncode}: {result.stderr_tail(3)}"
            )
            status = "error" if variant == "human" else "fail"
            return {"status": status, "kind": "output", "reason": f"the {variant} tree's check {why}"}
        outputs[variant] = result.stdout()
    if outputs["human"] == outputs["agent"]:
        return {"status": "pass", "kind": "output"}
    return {
        "status": "fail",
        "kind": "output",
        "reason": _first_difference(outputs["human"], outputs["agent"]),
    }


def _first_difference(human: str, agent: str) -> str:
    human_lines, agent_lines = human.splitlines(), agent.splitlines()
    for number, (want, got) in enumerate(zip(human_lines, agent_lines, strict=False), start=1):
        if want != got:
            return f"output differs at line {number}: human {want[:80]!r}, agent {got[:80]!r}"
    return f"output differs in length: human {len(human_lines)} lines, agent {len(agent_lines)} lines"
