"""Correctness: the optimized code must still give the same answers.

A task declares one or more checks under ``[correctness]`` (or ``[[correctness]]``), one per kind:
``output`` (a command's output, byte for byte), ``greedy`` (greedy generations of the task's server,
with a top-k logprob rule at the first divergence) and ``lm_eval`` (lm-evaluation-harness accuracy
against the task's server, within a tolerance and paired item by item). Kinds live in their own
modules; a conftest.py adds more through ``pytest_isobench_correctness_checks``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..options import Settings
from ..sandbox.base import Sandbox
from ..tasks import Task
from .base import CheckContext, CheckError, CorrectnessCheck, ServerFailed, combine
from .registry import check_registry

log = logging.getLogger("pytest_isobench")


def check_correctness(
    sandbox: Sandbox,
    task: Task,
    trees: Mapping[str, Path],
    out_dir: Path,
    settings: Settings,
    *,
    checks: Mapping[str, CorrectnessCheck] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every check the task declares; ``status`` is pass, fail, error, not_run or not_configured."""
    registry = dict(checks) if checks is not None else check_registry()
    results = []
    for config in task.correctness:
        implementation = registry.get(config.kind)
        if implementation is None:
            results.append(
                {
                    "status": "error",
                    "kind": config.kind,
                    "reason": f"no check of kind {config.kind!r} is registered (known:"
                    f" {', '.join(sorted(registry))}; a conftest.py adds one with"
                    " pytest_isobench_correctness_checks)",
                }
            )
            continue
        if "agent" not in trees:
            results.append(
                {"status": "not_run", "kind": config.kind, "reason": "the agent's patch did not apply"}
            )
            continue
        ctx = CheckContext(
            sandbox, task, trees, out_dir / config.kind, settings, progress or (lambda _message: None)
        )
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = implementation.run(config, ctx)
        except CheckError as exc:
            result = {"status": "error", "kind": config.kind, "reason": str(exc)}
        except ServerFailed as exc:
            status = "fail" if exc.variant == "agent" else "error"
            result = {"status": status, "kind": config.kind, "reason": str(exc)}
        log.debug("%s: correctness %s: %s", task.id, config.kind, result["status"])
        results.append(result)
    return combine(results)


__all__ = [
    "CheckContext",
    "CheckError",
    "CorrectnessCheck",
    "ServerFailed",
    "check_correctness",
    "check_registry",
]
