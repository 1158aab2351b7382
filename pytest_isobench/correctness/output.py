"""``output`` checks: a command run on the human and the agent trees must print the same bytes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..tasks import OutputCheck
from .base import CheckContext


class OutputEquivalence:
    """A correct optimization leaves what the command prints byte-identical."""

    kind = "output"

    def run(self, config: BaseModel, ctx: CheckContext) -> dict[str, Any]:
        assert isinstance(config, OutputCheck)
        outputs: dict[str, str] = {}
        for variant in ("human", "agent"):
            tree = ctx.tree(variant)
            result = ctx.sandbox.run(
                config.command,
                cwd=tree,
                env=ctx.sandbox.environment(tree),
                timeout_s=config.timeout_s,
                stdout_path=ctx.out_dir / f"{variant}.stdout.txt",
                stderr_path=ctx.out_dir / f"{variant}.stderr.txt",
            )
            if result.timed_out or result.returncode != 0:
                why = (
                    "timed out"
                    if result.timed_out
                    else f"exit code {result.returncode}: {result.stderr_tail(3)}"
                )
                status = "error" if variant == "human" else "fail"
                return {"status": status, "kind": self.kind, "reason": f"the {variant} tree's check {why}"}
            outputs[variant] = result.stdout()
        if outputs["human"] == outputs["agent"]:
            return {"status": "pass", "kind": self.kind}
        return {
            "status": "fail",
            "kind": self.kind,
            "reason": first_difference(outputs["human"], outputs["agent"]),
        }


def first_difference(human: str, agent: str) -> str:
    """Where two outputs first differ, in one line."""
    human_lines, agent_lines = human.splitlines(), agent.splitlines()
    for number, (want, got) in enumerate(zip(human_lines, agent_lines, strict=False), start=1):
        if want != got:
            return f"output differs at line {number}: human {want[:80]!r}, agent {got[:80]!r}"
    return f"output differs in length: human {len(human_lines)} lines, agent {len(agent_lines)} lines"
