"""OpenAI's Codex CLI as an agent (``codex[:MODEL]``, default ``gpt-5``): ``codex exec --json``.

The model endpoint is a custom model provider written into the attempt's own ``config.toml``
(Codex ignores ``OPENAI_BASE_URL``): its ``base_url`` is the attempt's OpenAI endpoint (the model
gateway; with ``--isobench-agent-network=bridge``, ``OPENAI_BASE_URL`` or the OpenAI API) and its key
the attempt's (the gateway's token, or the opt-out's ``OPENAI_API_KEY``), passed in the CLI's
environment only and kept out of the environment of the commands Codex runs. Retries are bounded,
plugins (a start-up ``git ls-remote``) and unbounded connection retries are off, and ``CODEX_HOME`` is
in the attempt's home.

Codex has no turn or spending limit of its own (``--isobench-agent-max-turns`` does not apply): the
model gateway holds its spending and token caps (``--isobench-agent-budget-usd``,
``--isobench-agent-max-tokens``), else the harness's time budget stops a looping model. Then there is no
usage line on stdout; the tokens come from the session rollout (``$CODEX_HOME/sessions/**/
rollout-*.jsonl``, its ``token_count`` events), which is kept as the artifact ``agent.rollout-*.jsonl``.
(No ``--ephemeral``: it would write no rollout.) Codex reports no cost: the harness prices the
tokens with its price table.

A model id missing from the CLI's catalog (``codex debug models``; codex 0.163.0 lists ``gpt-5.5``
but not ``gpt-5``) would run with fallback metadata and without the ``apply_patch`` edit tool. So the
harness reads the catalog once (at session start) and, for such a model, gives the attempt a catalog
(``model_catalog_json``) with one more entry: the closest catalog model that speaks the plain
Responses API and has ``apply_patch`` (longest common start of the id), under the requested id. The
outcome names it (``agent_run.catalog_entry_from``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .base import SolveContext
from .cli import (
    Attempt,
    AttemptFiles,
    CliAgent,
    CliOptions,
    Launch,
    Tokens,
    jsonl_events,
    stderr_tail,
    which,
)

OPTION = "--isobench-codex-cli"
PROVIDER = "isobench"
KEY_VAR = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
CODEX_DIR = ".codex"  # CODEX_HOME, under the attempt's home
LAST_MESSAGE = "last_message.txt"
REQUEST_RETRIES = 2
STREAM_RETRIES = 2
STREAM_IDLE_TIMEOUT_MS = 300_000
RECONNECTING = "Reconnecting..."
CATALOG = "model-catalog.json"  # under CODEX_HOME, when the model needs an entry of its own
CATALOG_TIMEOUT_S = 60.0


class Codex(CliAgent):
    """``codex exec`` in the working copy, full access, one fresh ``CODEX_HOME`` per attempt."""

    family = "codex"
    default_model = "gpt-5"
    install_hint = f"pip install 'pytest-isobench[agents]' (it bundles codex), or name one with {OPTION}=PATH"

    def find_cli(self, given: str | None) -> str:
        if given:
            return self.given_cli(given, OPTION)
        found = which(("codex",)) or bundled_codex()
        if found is None:
            raise ValueError(f"the Codex CLI was not found: {self.install_hint}")
        return found

    catalog: dict[str, Any] | None = None  # a model catalog with an entry for the model, when needed
    catalog_source: str | None = None  # the catalog model that entry copies

    def configure(self, options: CliOptions) -> None:
        super().configure(options)
        assert self.cli is not None
        self.catalog, self.catalog_source = catalog_for(self.model, model_catalog(self.cli))

    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        codex_home = home / CODEX_DIR
        env = {"CODEX_HOME": str(codex_home)}
        access = ctx.model_access
        if access is not None and (key := access.key("openai")):
            env[KEY_VAR] = key
        argv = [
            cli,
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "danger-full-access",
            "-m",
            self.model,
            "--disable",
            "plugins",
            "--disable",
            "unbounded_connection_retries",
            "-o",
            str(home / LAST_MESSAGE),
            "--",  # the prompt is never read as an option
            ctx.prompt,
        ]
        base_url = access.url("openai") if access is not None else DEFAULT_BASE_URL
        config = provider_config(base_url, KEY_VAR in env)
        files = {f"{CODEX_DIR}/config.toml": config}
        if self.catalog is not None:
            config = f"model_catalog_json = {json.dumps(str(codex_home / CATALOG))}\n" + config
            files = {f"{CODEX_DIR}/config.toml": config, f"{CODEX_DIR}/{CATALOG}": json.dumps(self.catalog)}
        return Launch(argv=argv, env=env, files=files)

    def parse(self, files: AttemptFiles) -> Attempt:
        events = jsonl_events(files.stdout)
        rollout = latest_rollout(files.home / CODEX_DIR)
        keep = [p for p in (rollout, files.home / LAST_MESSAGE) if p is not None]
        returncode = files.result.returncode
        tokens = stream_tokens(events)
        turns = None
        if rollout is not None:
            rollout_tokens, turns = rollout_usage(rollout)
            tokens = tokens or rollout_tokens  # after a kill only the rollout has them
        failure = api_failure(events, final=returncode not in (0, None))
        if failure is not None:
            stop, error = "api_error", failure
        elif returncode is None:
            stop, error = "timeout", None  # the harness stopped it: it sets the real reason
        elif returncode != 0 or not any(e.get("type") == "turn.completed" for e in events):
            stop, error = "crashed", stderr_tail(files.stderr) or f"codex exited with code {returncode}"
        else:
            stop, error = "completed", None
        extra = {"catalog_entry_from": self.catalog_source}
        return Attempt(
            stop, turns=turns, tokens=tokens, error=error, steps=steps_of(events), keep=keep, extra=extra
        )


def bundled_codex() -> str | None:
    """The codex of ``pip install openai-codex-cli-bin`` (the ``agents`` extra), if installed."""
    try:
        import codex_cli_bin  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    try:
        return str(codex_cli_bin.bundled_codex_path())
    except (OSError, AttributeError):
        return None


def model_catalog(cli: str) -> dict[str, Any] | None:
    """The CLI's model catalog (``codex debug models``), read in a throw-away ``CODEX_HOME``; None
    when it cannot be read (the attempt then runs with Codex's own fallback)."""
    with tempfile.TemporaryDirectory(prefix="isobench-codex-") as scratch:
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": scratch, "CODEX_HOME": scratch}
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [cli, "debug", "models"],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CATALOG_TIMEOUT_S,
            )
            with contextlib.suppress(ValueError):
                catalog = json.loads(done.stdout)
                if isinstance(catalog, dict) and isinstance(catalog.get("models"), list):
                    return catalog
    return None


def catalog_for(model: str, catalog: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """A catalog that knows ``model``, and the entry it was copied from; (None, None) when the CLI's own
    catalog already lists it (or there is no catalog to copy from)."""
    models = [m for m in (catalog or {}).get("models", []) if isinstance(m, dict) and m.get("slug")]
    if not models or any(m["slug"] == model for m in models):
        return None, None

    def shared(slug: str) -> int:  # characters in common at the start
        return next(
            (i for i, (a, b) in enumerate(zip(slug, model, strict=False)) if a != b),
            min(len(slug), len(model)),
        )

    # Entries for the plain Responses API with an apply_patch tool first (others offer their tools in
    # ways only OpenAI's own backend serves); among them the longest shared start, first in catalog order.
    plain = [m for m in models if not m.get("use_responses_lite") and m.get("apply_patch_tool_type")]
    closest = max(plain or models, key=lambda m: shared(str(m["slug"])))
    entry = {**closest, "slug": model, "display_name": model}
    return {**(catalog or {}), "models": [*models, entry]}, str(closest["slug"])


def provider_config(base_url: str, with_key: bool) -> str:
    """``config.toml``: the model provider (no key in it: ``env_key`` names the variable)."""
    fields = {
        "name": PROVIDER,
        "base_url": base_url,
        "wire_api": "responses",
        "request_max_retries": REQUEST_RETRIES,
        "stream_max_retries": STREAM_RETRIES,
        "stream_idle_timeout_ms": STREAM_IDLE_TIMEOUT_MS,
        **({"env_key": KEY_VAR} if with_key else {}),
    }
    body = "\n".join(f"{name} = {json.dumps(value)}" for name, value in fields.items())
    return (
        f'model_provider = "{PROVIDER}"\n\n'
        "[shell_environment_policy]\n"  # the commands Codex runs never see the key
        f"exclude = [{json.dumps(KEY_VAR)}]\n\n"
        f"[model_providers.{PROVIDER}]\n{body}\n"
    )


def stream_tokens(events: list[dict[str, Any]]) -> Tokens | None:
    """The sum of the ``turn.completed`` usages (None when there is none)."""
    usages = [
        e["usage"] for e in events if e.get("type") == "turn.completed" and isinstance(e.get("usage"), dict)
    ]
    if not usages:
        return None
    tokens = Tokens()
    for usage in usages:
        tokens.input += _int(usage.get("input_tokens"))
        tokens.cached += _int(usage.get("cached_input_tokens"))
        tokens.output += _int(usage.get("output_tokens"))
    return tokens


def latest_rollout(codex_home: Path) -> Path | None:
    """The newest session rollout file Codex wrote, if any."""
    found = sorted((codex_home / "sessions").rglob("rollout-*.jsonl"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def rollout_usage(path: Path) -> tuple[Tokens | None, int | None]:
    """Tokens (the last ``token_count`` total) and model responses (``token_count`` events) of a rollout."""
    totals: dict[str, Any] | None = None
    responses = 0
    for event in jsonl_events(path):
        payload = event.get("payload")
        if (
            event.get("type") != "event_msg"
            or not isinstance(payload, dict)
            or payload.get("type") != "token_count"
        ):
            continue
        info = payload.get("info")
        if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
            totals = info["total_token_usage"]
            responses += 1
    if totals is None:
        return None, None
    tokens = Tokens(
        input=_int(totals.get("input_tokens")),
        output=_int(totals.get("output_tokens")),
        cached=_int(totals.get("cached_input_tokens")),
    )
    return tokens, responses


def api_failure(events: list[dict[str, Any]], final: bool) -> str | None:
    """Why the model API failed: a ``turn.failed`` error, else, when Codex exited with an error
    (``final``), its last ``error`` event that is not a retry's notice."""
    for event in events:
        error = event.get("error")
        if event.get("type") == "turn.failed" and isinstance(error, dict):
            return str(error.get("message") or "turn failed")
    if not final:
        return None
    errors = [
        str(e.get("message"))
        for e in events
        if e.get("type") == "error"
        and e.get("message")
        and not str(e.get("message")).startswith(RECONNECTING)
    ]
    return errors[-1] if errors else None


def steps_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The normalised trajectory steps of the ``item.completed`` events."""
    steps: list[dict[str, Any]] = []
    for event in events:
        item = event.get("item")
        if event.get("type") != "item.completed" or not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in ("agent_message", "reasoning"):
            steps.append({"kind": "model", "text": str(item.get("text") or ""), **_flag(kind == "reasoning")})
        elif kind == "command_execution":
            code = item.get("exit_code")
            steps.append(
                {"kind": "tool_call", "tool": "exec_command", "input": {"command": item.get("command")}}
            )
            steps.append(
                {
                    "kind": "tool_result",
                    "tool": "exec_command",
                    "output": str(item.get("aggregated_output") or ""),
                    "exit_code": code,
                    "is_error": code != 0,
                }
            )
        elif kind == "file_change":
            steps.append(
                {"kind": "tool_call", "tool": "apply_patch", "input": {"changes": item.get("changes")}}
            )
            status = item.get("status")
            steps.append(
                {
                    "kind": "tool_result",
                    "tool": "apply_patch",
                    "output": str(status),
                    "is_error": status != "completed",
                }
            )
        elif kind == "mcp_tool_call":
            tool = f"{item.get('server')}.{item.get('tool')}"
            steps.append({"kind": "tool_call", "tool": tool, "input": item.get("arguments")})
            failed = item.get("error") is not None or item.get("status") == "failed"
            output = item.get("error") if failed else item.get("result")
            steps.append(
                {"kind": "tool_result", "tool": tool, "output": json.dumps(output), "is_error": failed}
            )
        elif kind == "web_search":
            steps.append({"kind": "tool_call", "tool": "web_search", "input": {"query": item.get("query")}})
        elif kind == "todo_list":
            steps.append({"kind": "tool_call", "tool": "todo_list", "input": {"items": item.get("items")}})
        elif kind == "error":  # a warning of the CLI's (e.g. a model missing from its catalog)
            steps.append({"kind": "model", "text": str(item.get("message") or ""), "is_error": True})
    return steps


def _flag(reasoning: bool) -> dict[str, bool]:
    return {"reasoning": True} if reasoning else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
