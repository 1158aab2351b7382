"""Run a coding-agent CLI for one attempt: isolated home, limits, reaping, what it did and spent.

Each CLI agent (``claude_code``, ``codex``, ``trae``) is a small class over :class:`CliAgent` that says
how to start its CLI (:meth:`CliAgent.launch`) and how to read what it left (:meth:`CliAgent.parse`);
:func:`run_attempt` does the rest the same way for all of them:

- a fresh home folder per attempt (``<artifacts>/agent-home``: the docker backend creates it inside the
  agent container and copies it back), with ``HOME``, ``TMPDIR`` and the XDG folders in it, so nothing
  is written outside it and the working copy; it is removed once its files of record are kept;
- stdin ``/dev/null``; the agent's environment from the sandbox plus the CLI's own variables: its
  model endpoint and key from ``SolveContext.model_access`` (through the model gateway, the gateway's
  address and the attempt's token; with ``--isobench-agent-network=bridge``, this environment's
  ``ANTHROPIC_BASE_URL``, ``OPENAI_API_KEY``...);
- the time budget as an outer wall-clock limit and the disk watchdog, through ``Sandbox.run`` (whose
  supervisor, or container, ends every process of the attempt, including those started in new sessions);
- the raw event stream kept as an artifact (``agent.stdout.txt``), the normalised trajectory written to
  ``trajectory.json`` (schema below), and the outcome's ``agent_run`` filled in (:meth:`Attempt.info`).

A model API that fails (authentication, rate limits, 5xx, refused connection) or a gateway that stops
during the attempt is an infrastructure error (:class:`ModelApiError`, the task is E and runs again on
resume); an agent stopped by its turn, budget or time limit is the agent's outcome, and its patch is
measured. Through the gateway, ``tokens`` and ``cost_usd`` are the gateway's count (``cost_source``
``gateway``), the CLI's own figures are kept as ``cli_tokens`` and ``cli_cost_usd``, and a request the
gateway refused at the attempt's cap makes the stop reason ``budget``.

``trajectory.json`` (``TRAJECTORY_SCHEMA``)::

    {"schema": "isobench-trajectory/1", "agent": "claude-code", "model": "claude-sonnet-4-5",
     "steps": [{"index": 0, "kind": "model", "text": "...",
                "tokens": {"input": 812, "output": 95, "cached": 0}},
               {"index": 1, "kind": "tool_call", "tool": "Edit", "input": {...}},
               {"index": 2, "kind": "tool_result", "tool": "Edit", "output": "...", "is_error": false}],
     "totals": {"turns": 3, "tokens": {...}, "cost_usd": 0.0123, "cost_source": "cli"}}

``kind`` is ``model`` (one model turn; ``tokens`` where the CLI reports them per turn), ``tool_call``
or ``tool_result``; long texts are cut to ``STEP_TEXT_LIMIT`` characters.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from ..gateway.access import account
from ..sandbox.base import SandboxError
from ..sandbox.disk import DISK_LIMIT, DiskWatchdog, cap_log
from ..sandbox.procs import RunResult
from .base import AgentRun, SolveContext

TRAJECTORY_SCHEMA = "isobench-trajectory/1"
STEP_TEXT_LIMIT = 4000
HOME_NAME = "agent-home"
STDOUT_NAME = "agent.stdout.txt"
STDERR_NAME = "agent.stderr.txt"
# How an attempt ended. The harness sets timeout and disk_limit; the CLI's module reads the others.
STOP_REASONS = ("completed", "max_turns", "budget", "timeout", "api_error", "crashed", "disk_limit")


class ModelApiError(SandboxError):
    """The agent's model API failed (auth, rate limit, 5xx, refused connection): infrastructure, not
    the agent's failure. The task errors with the reason; a rerun with the same run id tries again.
    ``agent_run`` is what the attempt did and spent until then (the outcome keeps it)."""

    def __init__(self, message: str, agent_run: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.agent_run = agent_run or {}


@dataclass(frozen=True)
class CliOptions:
    """What the user set for CLI agents (``--isobench-agent-max-turns`` and friends)."""

    max_turns: int | None = None
    budget_usd: float | None = None
    cli_paths: Mapping[str, str] = field(default_factory=dict)  # agent family -> CLI path (options)
    prices: Mapping[str, tuple[float, ...]] | None = None  # USD per million (input, output[, cached])


@dataclass(frozen=True)
class Launch:
    """How to start the CLI for one attempt."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the sandbox's agent environment
    files: dict[str, str] = field(default_factory=dict)  # written under the home first (relative path)


@dataclass(frozen=True)
class AttemptFiles:
    """What one attempt left, for :meth:`CliAgent.parse`."""

    home: Path  # the attempt's home on the host side (the CLI's own files: sessions, trajectories)
    stdout: Path
    stderr: Path
    result: RunResult  # returncode None when the harness stopped it (timeout, disk limit)


@dataclass
class Tokens:
    """Tokens of an attempt. ``input`` counts every input token, ``cached`` the part served from a cache."""

    input: int = 0
    output: int = 0
    cached: int = 0

    def to_wire(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "cached": self.cached}


@dataclass
class Attempt:
    """What :meth:`CliAgent.parse` read from an attempt."""

    stop_reason: str  # one of STOP_REASONS
    turns: int | None = None
    tokens: Tokens | None = None
    cost_usd: float | None = None  # the CLI's own figure, where it reports one
    model: str | None = None  # the model the CLI says it used
    error: str | None = None  # the API's error, or the crash's stderr tail
    steps: list[dict[str, Any]] = field(default_factory=list)  # normalised trajectory steps
    keep: list[Path] = field(default_factory=list)  # files under the home to keep as artifacts
    extra: dict[str, Any] = field(default_factory=dict)  # more facts for agent_run (None values left out)

    def info(self, agent: CliAgent, prices: Mapping[str, tuple[float, ...]] | None) -> dict[str, Any]:
        """The outcome's ``agent_run`` fields: stop reason, turns, tokens, cost (and where it came from)."""
        cost, source = self.cost_usd, "cli" if self.cost_usd is not None else None
        model = self.model or agent.model
        if cost is None and self.tokens is not None:
            from ..pricing import cost_usd, price_table

            tokens = self.tokens
            cost = cost_usd(model, tokens.input, tokens.output, tokens.cached, table=price_table(prices))
            source = "price_table" if cost is not None else None
        return {
            "cli": agent.family,
            "model": model,
            "stop_reason": self.stop_reason,
            "turns": self.turns,
            "tokens": None if self.tokens is None else self.tokens.to_wire(),
            "cost_usd": None if cost is None else round(cost, 6),
            "cost_source": source,
            **({"error": self.error} if self.error else {}),
            **{name: value for name, value in self.extra.items() if value is not None},
        }


class CliAgent(ABC):
    """An agent that is a coding CLI. Subclasses set the class attributes and two methods."""

    family: ClassVar[str]  # "claude-code", "codex", "trae": the key of ``CliOptions.cli_paths``
    default_model: ClassVar[str]
    install_hint: ClassVar[str]  # how to get the CLI, for the usage error when it is missing
    calls_model: ClassVar[bool] = True  # it reaches its model through the gateway by default

    def __init__(self, name: str, model: str | None = None) -> None:
        self.name = name
        self.model = model or self.default_model
        self.options = CliOptions()
        self.cli: str | None = None

    @classmethod
    def create(cls, name: str, arg: str | None) -> Self:
        """The agent registered as ``name``, from ``name`` or ``name:MODEL``."""
        if arg is not None and not arg.strip():
            raise ValueError(f"{name}:MODEL needs a model name (default {cls.default_model})")
        return cls(name, arg.strip() if arg else None)

    def given_cli(self, given: str, option: str) -> str:
        """The CLI an option names, as an absolute path; ValueError naming the option and the fix."""
        try:
            return executable(given, option)
        except ValueError as exc:
            raise ValueError(f"{exc}; {self.install_hint}") from None

    def configure(self, options: CliOptions) -> None:
        """At session start: take the options and find the CLI (ValueError with the fix when missing)."""
        self.options = options
        self.cli = self.find_cli(options.cli_paths.get(self.family))

    @abstractmethod
    def find_cli(self, given: str | None) -> str:
        """The CLI to run: ``given`` (an option), else one on PATH, else a bundled one; ValueError
        naming the option and ``install_hint`` when there is none."""

    def tools(self) -> dict[str, Path]:
        """Host files the agent needs where it runs (name -> path): the docker backend bakes them into
        the agent's image. Default: the CLI itself under the name ``cli``."""
        return {} if self.cli is None else {"cli": Path(self.cli)}

    @abstractmethod
    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        """The command line, variables and config files for one attempt. ``home`` is the attempt's home
        (a path valid where the agent runs), ``cli`` the CLI's path there."""

    @abstractmethod
    def parse(self, files: AttemptFiles) -> Attempt:
        """Read the attempt's output: how it ended, turns, tokens, cost, trajectory steps."""

    def solve(self, ctx: SolveContext) -> AgentRun:
        return run_attempt(self, ctx)


def run_attempt(agent: CliAgent, ctx: SolveContext) -> AgentRun:
    """One attempt of a CLI agent in ``ctx.workdir`` (see the module's docstring)."""
    if agent.cli is None:
        agent.configure(agent.options)
    home = ctx.log_dir / HOME_NAME
    shutil.rmtree(home, ignore_errors=True)
    for sub in ("tmp", "run", "config", "cache", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cli = ctx.tools.get("cli") or agent.cli or ""
    launch = agent.launch(ctx, home, cli)
    for relative, text in launch.files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    env = ctx.sandbox.environment()
    env.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        XDG_RUNTIME_DIR=str(home / "run"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
    )
    env.update(launch.env)
    stdout, stderr = ctx.log_dir / STDOUT_NAME, ctx.log_dir / STDERR_NAME
    for log in (stdout, stderr):
        log.touch()
    with DiskWatchdog([ctx.workdir, stdout, stderr, home], ctx.disk_limit_bytes) as watchdog:
        result = ctx.sandbox.run(
            shlex.join(launch.argv),
            cwd=ctx.workdir,
            env=env,
            timeout_s=ctx.time_budget_s,
            stdout_path=stdout,
            stderr_path=stderr,
            stop_check=watchdog.check,
        )
    try:
        attempt = agent.parse(AttemptFiles(home, stdout, stderr, result))
        for path in attempt.keep:  # the CLI's own records (session rollout, trajectory file)
            if path.is_file():
                shutil.copyfile(path, ctx.log_dir / f"agent.{path.name}")
    finally:
        shutil.rmtree(home, ignore_errors=True)  # config, caches, anything a key may sit in
    if result.stopped is not None:
        attempt.stop_reason = result.stopped
    elif result.timed_out:
        attempt.stop_reason = "timeout"
    info = attempt.info(agent, agent.options.prices)
    ledger = ctx.model_access.ledger if ctx.model_access is not None else None
    if ledger is not None:  # tokens and cost as the gateway counted them; budget when it stopped it
        account(info, ledger)
    write_trajectory(ctx.log_dir / "trajectory.json", agent, info, attempt.steps)
    cut = {log.name: n for log in (stdout, stderr) if (n := cap_log(log))}
    if cut:
        info["log_bytes_cut"] = cut
    if result.stopped == DISK_LIMIT:
        info["disk_limit_bytes"] = watchdog.limit_bytes
        info["disk_grown_bytes"] = watchdog.grown_bytes
        info["patch"] = "discarded: the agent passed its disk limit"
    gateway_down = ledger is not None and not ledger.gateway_alive()
    fault = ledger.fault if ledger is not None else None
    if info["stop_reason"] == "api_error" or gateway_down or fault:
        run = {"returncode": result.returncode, "timed_out": result.timed_out, **info}
        run["duration_s"] = round(result.duration_s, 3)
        if gateway_down:
            raise ModelApiError(f"{agent.name}: the model gateway stopped during the attempt", run)
        if fault:
            raise ModelApiError(f"{agent.name}: {fault}", run)
        raise ModelApiError(f"{agent.name}: the model API failed: {attempt.error or 'no detail'}", run)
    return AgentRun(
        returncode=result.returncode,
        timed_out=result.timed_out,
        duration_s=result.duration_s,
        patch="" if result.stopped == DISK_LIMIT else None,
        info=info,
    )


def write_trajectory(
    path: Path, agent: CliAgent, info: Mapping[str, Any], steps: list[dict[str, Any]]
) -> None:
    """The normalised trajectory (``TRAJECTORY_SCHEMA``), indexes filled in, long texts cut."""
    clean = []
    for index, step in enumerate(steps):
        entry = {"index": index, **{k: _cut(v) for k, v in step.items() if k != "index"}}
        clean.append(entry)
    record = {
        "schema": TRAJECTORY_SCHEMA,
        "agent": agent.name,
        "model": info.get("model"),
        "steps": clean,
        "totals": {k: info.get(k) for k in ("stop_reason", "turns", "tokens", "cost_usd", "cost_source")},
    }
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > STEP_TEXT_LIMIT:
        return value[:STEP_TEXT_LIMIT] + f"... [{len(value) - STEP_TEXT_LIMIT} characters cut]"
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def jsonl_events(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines stream; other lines (banners, torn last line) are skipped."""
    events = []
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            line = line.strip()
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
    return events


def stderr_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log, for a crash's reason."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return ""


def which(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` found on PATH."""
    for name in names:
        if found := shutil.which(name):
            return found
    return None


def executable(given: str, option: str) -> str:
    """``given`` (an option's value) as an absolute executable path; ValueError naming the option."""
    path = shutil.which(given) or (given if os.access(given, os.X_OK) else None)
    if path is None or Path(path).is_dir():
        raise ValueError(f"{option}={given}: not an executable file")
    return str(Path(path).resolve())
