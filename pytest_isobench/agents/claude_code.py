"""Claude Code (``claude-code[:MODEL]``): Anthropic's coding CLI, headless, one isolated attempt per task.

The CLI comes from ``--isobench-claude-cli``, else ``claude`` on PATH, else the binary bundled with the
``claude-agent-sdk`` package (``pip install 'pytest-isobench[agents]'``). It runs as

    claude -p PROMPT --output-format stream-json --verbose --model MODEL --max-turns N
           [--max-budget-usd X] --dangerously-skip-permissions --no-session-persistence

with its config and temporary folders in the attempt's home, no non-essential traffic (only the model
endpoint is contacted), bounded API retries and timeouts, and the model endpoint and key of the
attempt's ``model_access`` (``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY``: the model gateway and the
attempt's token; with ``--isobench-agent-network=bridge`` this environment's, ``ANTHROPIC_AUTH_TOKEN``
included).

What it did and spent comes from its JSON-lines stdout: the last ``{"type": "result"}`` line gives the
stop reason, turns, tokens (summed over its requests) and the cost the CLI computed at list price;
the ``assistant`` and ``user`` events give the trajectory's steps.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, ClassVar

from .base import SolveContext
from .cli import Attempt, AttemptFiles, CliAgent, Launch, Tokens, jsonl_events, stderr_tail, which

OPTION = "--isobench-claude-cli"
# Bounds on the CLI's API retries and waits (its own defaults: 10 retries over minutes, 10 min a
# request); a value set in this environment wins.
LIMIT_DEFAULTS = {"CLAUDE_CODE_MAX_RETRIES": "3", "API_TIMEOUT_MS": "300000"}
TUNING_VARS = (*LIMIT_DEFAULTS, "CLAUDE_STREAM_IDLE_TIMEOUT_MS")
STOP_BY_SUBTYPE = {"success": "completed", "error_max_turns": "max_turns", "error_max_budget_usd": "budget"}


def bundled_cli() -> Path | None:
    """The ``claude`` binary that ships inside the ``claude-agent-sdk`` package, if it is installed."""
    try:
        spec = importlib.util.find_spec("claude_agent_sdk")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "_bundled" / "claude"
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


class ClaudeCode(CliAgent):
    """Claude Code in print mode with stream-json output (see the module's docstring)."""

    family: ClassVar[str] = "claude-code"
    default_model: ClassVar[str] = "claude-sonnet-4-5"
    install_hint: ClassVar[str] = (
        f"install it with pip install 'pytest-isobench[agents]' (bundles it) or name one with {OPTION}"
    )

    def find_cli(self, given: str | None) -> str:
        if given:
            return self.given_cli(given, OPTION)
        found = which(("claude",)) or bundled_cli()
        if found is None:
            raise ValueError(f"the claude CLI was not found (not on PATH, not bundled); {self.install_hint}")
        return str(found)

    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        argv = [cli, "-p", ctx.prompt, "--output-format", "stream-json", "--verbose", "--model", self.model]
        if self.options.max_turns is not None:
            argv += ["--max-turns", str(self.options.max_turns)]
        if self.options.budget_usd is not None:
            argv += ["--max-budget-usd", f"{self.options.budget_usd:g}"]
        argv += ["--dangerously-skip-permissions", "--no-session-persistence"]
        env = {
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "CLAUDE_CODE_TMPDIR": str(home / "tmp"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            # Needed as root for --dangerously-skip-permissions; harmless otherwise (the attempt is
            # sandboxed either way), and whether the agent runs as root depends on the backend.
            "IS_SANDBOX": "1",
            **LIMIT_DEFAULTS,
        }
        if ctx.model_access is not None:  # the gateway's address and the attempt's token, or the opt-out's
            env.update(ctx.model_access.provider_env("anthropic"))
        for name in TUNING_VARS:
            if os.environ.get(name):
                env[name] = os.environ[name]
        return Launch(argv=argv, env=env)

    def parse(self, files: AttemptFiles) -> Attempt:
        events = jsonl_events(files.stdout)
        steps = trajectory_steps(events)
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        if result is None:
            code = files.result.returncode
            why = f"claude exited with code {code} without a result line"
            tail = stderr_tail(files.stderr)
            return Attempt("crashed", error=f"{why}: {tail}" if tail else why, steps=steps)
        stop, error = stop_reason(result)
        tokens, model = result_usage(result)
        cost = result.get("total_cost_usd")
        return Attempt(
            stop,
            turns=_int(result.get("num_turns")),
            tokens=tokens,
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            model=model,
            error=error,
            steps=steps,
        )


def stop_reason(result: dict[str, Any]) -> tuple[str, str | None]:
    """How the attempt ended, and the error's text, from the result line."""
    subtype = str(result.get("subtype") or "")
    detail = result.get("result") if isinstance(result.get("result"), str) else None
    errors = result.get("errors")
    if isinstance(errors, list) and errors:
        detail = "; ".join(str(e) for e in errors)
    status = result.get("api_error_status")
    api_failed = (
        status is not None
        or result.get("terminal_reason") == "api_error"
        or (detail or "").startswith("API Error")
    )
    if result.get("is_error") and api_failed and subtype not in ("error_max_turns", "error_max_budget_usd"):
        reason = detail or "no detail"
        return "api_error", reason if status is None or str(status) in reason else f"HTTP {status}: {reason}"
    if subtype in STOP_BY_SUBTYPE and (subtype != "success" or not result.get("is_error")):
        return STOP_BY_SUBTYPE[subtype], None if subtype == "success" else detail
    return "crashed", f"{subtype or 'error'}: {detail or 'no detail'}"


def result_usage(result: dict[str, Any]) -> tuple[Tokens | None, str | None]:
    """Tokens summed over the attempt's requests, and the model when there was just one.

    ``modelUsage`` (per model) is preferred: it also counts the last request of a run stopped by its
    spending cap, which ``usage`` misses, and it is what ``total_cost_usd`` is computed from.
    """
    per_model = result.get("modelUsage")
    if isinstance(per_model, dict) and per_model:
        tokens = Tokens()
        for figures in per_model.values():
            if not isinstance(figures, dict):
                continue
            cached = _int(figures.get("cacheReadInputTokens")) or 0
            tokens.input += (_int(figures.get("inputTokens")) or 0) + cached
            tokens.input += _int(figures.get("cacheCreationInputTokens")) or 0
            tokens.output += _int(figures.get("outputTokens")) or 0
            tokens.cached += cached
        return tokens, next(iter(per_model)) if len(per_model) == 1 else None
    usage = result.get("usage")
    if not isinstance(usage, dict):
        return None, None
    cached = _int(usage.get("cache_read_input_tokens")) or 0
    fresh = (_int(usage.get("input_tokens")) or 0) + (_int(usage.get("cache_creation_input_tokens")) or 0)
    return Tokens(input=fresh + cached, output=_int(usage.get("output_tokens")) or 0, cached=cached), None


def trajectory_steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised steps: one ``model`` step per model turn (its text), its ``tool_call`` steps, and the
    ``tool_result`` steps the CLI sent back. Usage in these events is a placeholder: no tokens here."""
    steps: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}
    turn_step: dict[str, int] = {}  # message id -> index of its model step (a turn spans several events)
    for event in events:
        message = event.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        if event.get("type") == "assistant" and message.get("model") != "<synthetic>":
            key = str(message.get("id") or len(steps))
            if key not in turn_step:
                turn_step[key] = len(steps)
                steps.append({"kind": "model", "text": ""})
            for block in message["content"]:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text":
                    model_step = steps[turn_step[key]]
                    model_step["text"] = "\n".join(t for t in (model_step["text"], block.get("text")) if t)
                elif block.get("type") == "tool_use":
                    name = str(block.get("name"))
                    tool_names[str(block.get("id"))] = name
                    steps.append({"kind": "tool_call", "tool": name, "input": block.get("input")})
        elif event.get("type") == "user":
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    steps.append(
                        {
                            "kind": "tool_result",
                            "tool": tool_names.get(str(block.get("tool_use_id")), "?"),
                            "output": _text(block.get("content")),
                            "is_error": bool(block.get("is_error")),
                        }
                    )
    return steps


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return "" if content is None else str(content)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
