"""Built-in agents: the human oracle, noop, replay of stored patches, and any shell command."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..results import jsonl_objects
from ..sandbox.disk import DISK_LIMIT, DiskWatchdog, cap_log
from ..sandbox.gitutil import git
from ..sandbox.procs import RunResult
from .base import AgentRun, SolveContext


class HumanAgent:
    """Applies the task's own change (base..human): the oracle that validates the harness."""

    name = "human"

    @classmethod
    def create(cls, arg: str | None) -> HumanAgent:
        if arg:
            raise ValueError("the human agent takes no argument")
        return cls()

    def solve(self, ctx: SolveContext) -> AgentRun:
        start = time.monotonic()
        patch_file = ctx.log_dir / "human.diff"
        patch_file.write_text(ctx.oracle_patch(), encoding="utf-8", errors="surrogateescape")
        try:
            git("apply", "--whitespace=nowarn", str(patch_file), cwd=ctx.workdir)
        finally:
            patch_file.unlink(missing_ok=True)
        return AgentRun(duration_s=time.monotonic() - start)


class NoopAgent:
    """Changes nothing: every task should fail the hard gate with it."""

    name = "noop"

    @classmethod
    def create(cls, arg: str | None) -> NoopAgent:
        if arg:
            raise ValueError("the noop agent takes no argument")
        return cls()

    def solve(self, ctx: SolveContext) -> AgentRun:
        return AgentRun()


class ReplayAgent:
    """Patches from a predictions JSONL (SWE-bench style) or a folder of ``<task-id>.diff`` files."""

    name = "replay"

    def __init__(self, source: Path, predictions: dict[str, dict[str, Any]]) -> None:
        self.source = source
        self.predictions = predictions

    @classmethod
    def create(cls, arg: str | None) -> ReplayAgent:
        if not arg:
            raise ValueError(
                "replay needs a path: replay:PATH (a predictions .jsonl or a folder of <task-id>.diff)"
            )
        source = Path(arg).expanduser().resolve()
        if source.is_dir():
            predictions = {
                p.stem: {
                    "model_patch": p.read_text(encoding="utf-8", errors="surrogateescape"),
                    "file": str(p),
                }
                for p in sorted(source.glob("*.diff"))
            }
        elif source.is_file():
            predictions = load_predictions(source)
        else:
            raise ValueError(f"{source} does not exist")
        return cls(source, predictions)

    def unmatched_predictions(self, task_ids: Iterable[str]) -> str | None:
        """A warning when predictions match no selected task (each such task would get an empty
        patch); None when every prediction names one of ``task_ids``."""
        known = set(task_ids)
        unmatched = sorted(set(self.predictions) - known)
        if not unmatched:
            return None
        missing = len(known - set(self.predictions))
        examples = ", ".join(repr(i) for i in unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        return (
            f"replay:{self.source}: {len(unmatched)} of {len(self.predictions)} prediction(s) match no"
            f" selected task ({examples}); {missing} selected task(s) have no prediction and get an empty"
            f" patch. Predictions are matched on instance_id (or the .diff file name) = the task id,"
            f" e.g. {min(known)!r}"
            if known
            else "no task is selected"
        )

    def solve(self, ctx: SolveContext) -> AgentRun:
        prediction = self.predictions.get(ctx.task.id)
        if prediction is None:
            return AgentRun(patch="", info={"prediction": "missing", "source": str(self.source)})
        info = {"prediction": "found", "source": str(self.source)}
        if prediction.get("model_name_or_path"):
            info["model_name_or_path"] = str(prediction["model_name_or_path"])
        return AgentRun(patch=prediction.get("model_patch") or "", info=info)


def load_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """SWE-bench-style lines ``{"instance_id", "model_patch", "model_name_or_path"}``; last wins."""
    predictions: dict[str, dict[str, Any]] = {}
    for number, record in jsonl_objects(path):
        if not isinstance(record.get("instance_id"), str):
            raise ValueError(f"{path}:{number}: each line needs a string 'instance_id'")
        patch = record.get("model_patch")
        if patch is not None and not isinstance(patch, str):
            raise ValueError(f"{path}:{number}: 'model_patch' must be a string or null")
        predictions[record["instance_id"]] = record
    return predictions


class CommandAgent:
    """Runs a shell command in the working copy, with the prompt in a file and a hard time budget."""

    name = "command"

    def __init__(self, command: str) -> None:
        self.command = command

    @classmethod
    def create(cls, arg: str | None) -> CommandAgent:
        if not arg or not arg.strip():
            raise ValueError("command needs a shell command: command:SHELL")
        return cls(arg)

    def solve(self, ctx: SolveContext) -> AgentRun:
        env = ctx.sandbox.environment()
        env.update(
            ISOBENCH_TASK_ID=ctx.task.id,
            ISOBENCH_PROMPT_FILE=str(ctx.prompt_file),
            ISOBENCH_WORKDIR=str(ctx.workdir),
        )
        if ctx.model_access is not None and ctx.model_access.mode == "gateway":
            env.update(ctx.model_access.variables)  # the gateway's URLs and this attempt's token
        logs = [ctx.log_dir / "agent.stdout.txt", ctx.log_dir / "agent.stderr.txt"]
        for log in logs:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch()
        with DiskWatchdog([ctx.workdir, *logs], ctx.disk_limit_bytes) as watchdog:
            result = ctx.sandbox.run(
                self.command,
                cwd=ctx.workdir,
                env=env,
                timeout_s=ctx.time_budget_s,
                stdout_path=logs[0],
                stderr_path=logs[1],
                stop_check=watchdog.check,
            )
        return AgentRun(
            returncode=result.returncode,
            timed_out=result.timed_out,
            duration_s=result.duration_s,
            patch="" if result.stopped == DISK_LIMIT else None,
            info={"command": self.command, **stop_info(result, watchdog, logs)},
        )


def stop_info(result: RunResult, watchdog: DiskWatchdog, logs: list[Path]) -> dict[str, Any]:
    """Why the harness stopped an agent (``stop_reason``: timeout or disk_limit), and what its logs lost.

    An agent stopped at its disk limit gets no patch: the harness does not diff what may be gigabytes.
    """
    info: dict[str, Any] = {}
    if result.stopped is not None:
        info["stop_reason"] = result.stopped
    elif result.timed_out:
        info["stop_reason"] = "timeout"
    if result.stopped == DISK_LIMIT:
        info["disk_limit_bytes"] = watchdog.limit_bytes
        info["disk_grown_bytes"] = watchdog.grown_bytes
        info["patch"] = "discarded: the agent passed its disk limit"
    cut = {log.name: n for log in logs if (n := cap_log(log))}
    if cut:
        info["log_bytes_cut"] = cut
    return info


__all__ = ["CommandAgent", "HumanAgent", "NoopAgent", "ReplayAgent", "load_predictions"]
