"""What a correctness check is, what it gets, and the task server it may start on a tree.

A check compares the agent's tree with the human's. It returns a builtins-only dict with at least
``status`` (``pass``, ``fail``, ``error``, ``not_run``) and ``kind``; ``reason`` says why when it is not
``pass``. Trouble the check cannot blame on the agent (the human's server fails, lm-eval is missing)
is ``error``; what the agent's tree did wrong is ``fail``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from ..inputs import with_dataset_dir
from ..measure.runner import answers, free_port, substitute, wait_ready
from ..options import Settings
from ..sandbox.base import Sandbox
from ..tasks import Task

STATUSES = ("pass", "fail", "error", "not_run")
# Which status the combination of several checks takes: the first of these any check has.
PRECEDENCE = ("fail", "error", "pass", "not_run")


@dataclass(frozen=True)
class CheckContext:
    """One (task, agent) at correctness time: the measured trees and where the check writes."""

    sandbox: Sandbox
    task: Task
    trees: Mapping[str, Path]  # "human" and, when its patch applied, "agent"
    out_dir: Path  # this check's own folder of artifacts
    settings: Settings
    progress: Callable[[str], None] = field(default=lambda _message: None)

    def tree(self, variant: str) -> Path:
        return self.trees.get(variant) or self.sandbox.variant_tree(variant)


class CorrectnessCheck(Protocol):
    """A kind of check. ``config`` is the task file's entry for it (a pydantic model; a conftest's
    kind gets ``PluginCheck`` with its fields as extras)."""

    kind: str

    def run(self, config: BaseModel, ctx: CheckContext) -> dict[str, Any]:
        """Compare the agent's tree with the human's; never raises for the agent's trouble."""
        ...


class CheckError(Exception):
    """The check could not run (status ``error``); the message is the reason."""


class ServerFailed(Exception):
    """A variant's server did not come up; ``variant`` says whose (the agent's is its failure)."""

    def __init__(self, variant: str, reason: str) -> None:
        super().__init__(f"the {variant} tree's server {reason}")
        self.variant = variant


@contextlib.contextmanager
def task_server(ctx: CheckContext, variant: str, *, from_harness: bool = False) -> Iterator[str]:
    """Start the task's benchmark server on ``variant``'s tree (same command, flags and environment as
    the benchmark's) and yield its base URL, e.g. ``http://127.0.0.1:8123``; stop it afterwards.

    The URL is the server's own: a command the sandbox runs on the same tree reaches it. With
    ``from_harness`` the check talks to it from here, which a server that answers only inside its
    container (docker with ``--isobench-measure-network=none``) cannot serve: CheckError says so.
    """
    bench = with_dataset_dir(ctx.task.benchmark, ctx.settings.dataset_dir)
    if bench.server is None:
        raise CheckError("the task's benchmark has no server (benchmark.server) to check against")
    tree = ctx.tree(variant)
    port = free_port()
    result_dir = ctx.out_dir / variant / "server-results"
    result_dir.mkdir(parents=True, exist_ok=True)
    env = {**ctx.sandbox.environment(tree), **bench.env}
    command = substitute(bench.server, port=port, result_dir=result_dir)
    server = ctx.sandbox.start(command, cwd=tree, env=env, log_path=ctx.out_dir / variant / "server.log")
    try:
        ready_url = substitute(bench.ready_url, port=port, result_dir=result_dir)
        probe = getattr(server, "probe", answers)
        why = wait_ready(ready_url, server.alive, bench.server_timeout_s, probe)
        if why is not None:
            raise ServerFailed(variant, why.removeprefix("the server "))
        if from_harness and probe is not answers and not answers(ready_url):
            raise CheckError(
                f"the {variant} server answers only inside its container, not from the harness, where this"
                " check runs: use --isobench-measure-network=host under the docker backend"
            )
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's correctness from its checks: a ``fail`` wins, then an ``error``, then ``pass``."""
    if not results:
        return {"status": "not_configured", "checks": []}
    status = next(s for s in PRECEDENCE if any(r["status"] == s for r in results))
    combined: dict[str, Any] = {
        "status": status,
        "kind": "+".join(r["kind"] for r in results),
        "checks": results,
    }
    deciding = next(r for r in results if r["status"] == status)
    if status != "pass" and deciding.get("reason"):
        combined["reason"] = f"{deciding['kind']}: {deciding['reason']}"
    return combined
