"""TRAE-agent (``trae-cli``, bytedance/trae-agent) as a CLI agent: ``trae:PROVIDER/MODEL``.

TRAE is not on PyPI (it needs Python >= 3.12): the user installs it and names its ``trae-cli`` with
``--isobench-trae-cli`` (or ``ISOBENCH_TRAE_CLI``), or puts it on PATH. Per attempt the home gets a
config YAML (``trae_config.yaml``: the provider, its base URL, the model, ``max_steps``, the default
tools, Lakeview off) and TRAE runs as::

    trae-cli run PROMPT --config-file HOME/trae_config.yaml --working-dir WORKDIR --max-steps N \\
        --trajectory-file HOME/trae_trajectory.json --patch-path HOME/trae.patch --console-type simple

The API key never enters a file: the YAML's ``api_key`` is empty and TRAE takes ``<PROVIDER>_API_KEY``
from its environment (an environment value wins over the config's): the attempt's token and the model
gateway's address (with ``--isobench-agent-network=bridge``: this environment's ``<PROVIDER>_API_KEY``
and ``<PROVIDER>_BASE_URL``, default the provider's own). TRAE exits 0 even when the model API
failed: how the attempt ended is read from its trajectory (``success``, ``final_result``, the steps'
``error``); tokens are the sum of ``llm_interactions[].response.usage``, priced with the price table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from ..gateway.upstreams import PROVIDERS  # TRAE's providers, and the variable names it reads too
from ..secrets import redact
from .base import SolveContext
from .cli import Attempt, AttemptFiles, CliAgent, CliOptions, Launch, Tokens, executable, stderr_tail, which

CONFIG_NAME = "trae_config.yaml"
TRAJECTORY_NAME = "trae_trajectory.json"
PATCH_NAME = "trae.patch"
MODEL_KEY = "isobench_model"  # the model's name inside the config
TOOLS = ("bash", "str_replace_based_edit_tool", "sequentialthinking", "task_done")
DEFAULT_MAX_STEPS = 200  # TRAE's example config, for --isobench-agent-max-turns=none
MAX_TOKENS = 16384  # per model call (TRAE's own default of 4096 cuts reasoning models short)
MAX_STEPS_TEXT = "exceeded maximum steps"  # TRAE's final_result when --max-steps ran out
ERROR_LIMIT = 1000

INSTALL_HINT = (
    "TRAE-agent is not on PyPI and needs Python >= 3.12: clone https://github.com/bytedance/trae-agent,"
    " create a Python 3.12 virtual environment, install it there with the versions of its uv.lock"
    " (`uv sync`, or `pip install -c <uv.lock versions> . docker pexpect`) plus `docker` and `pexpect`,"
    " then give its `trae-cli` with --isobench-trae-cli=PATH (or ISOBENCH_TRAE_CLI=PATH), or put it on PATH"
)


# A step's error that is the model API's doing: an HTTP status from the SDK, or no answer at all.
_STATUS = re.compile(r"Error code: (\d{3})")
_NO_ANSWER = ("Connection error", "Request timed out", "APIConnectionError", "APITimeoutError")
API_STATUSES = frozenset({401, 402, 403, 404, 408, 409, 429})  # plus every 5xx


def parse_spec(arg: str | None) -> tuple[str, str]:
    """``PROVIDER/MODEL`` (the part after ``trae:``) as (provider, model); ValueError with the forms."""
    provider, _, model = (arg or "").partition("/")
    known = ", ".join(PROVIDERS)
    if not arg or not model.strip() or not provider:
        raise ValueError(f"trae needs a provider and a model: trae:PROVIDER/MODEL (providers: {known})")
    if provider not in PROVIDERS:
        raise ValueError(f"trae: unknown provider {provider!r}; known providers: {known}")
    return provider, model.strip()


class Trae(CliAgent):
    """TRAE-agent's ``trae-cli run`` for one attempt."""

    family: ClassVar[str] = "trae"
    default_model: ClassVar[str] = "gpt-5"
    install_hint: ClassVar[str] = INSTALL_HINT

    def __init__(self, name: str, provider: str, model: str) -> None:
        super().__init__(name, model)
        self.provider = PROVIDERS[provider]

    @classmethod
    def create(cls, name: str, arg: str | None) -> Trae:
        """``trae:PROVIDER/MODEL``."""
        provider, model = parse_spec(arg)
        return cls(name, provider, model)

    @classmethod
    def preset(cls, name: str, spec: str, arg: str | None) -> Trae:
        """A paper name (``trae-gpt5``): its provider and model are fixed."""
        if arg is not None:
            raise ValueError(
                f"{name} takes no model (it is trae:{spec}); for another one use trae:PROVIDER/MODEL"
            )
        return cls.create(name, spec)

    def configure(self, options: CliOptions) -> None:
        super().configure(options)
        if not os.environ.get(self.provider.key_vars[0]):
            raise ValueError(
                f"{self.name} needs {self.provider.key_vars[0]} in the environment (the model's API key;"
                f" for a server that takes none, set it to any value), and {self.provider.url_var} for"
                f" another endpoint than {self.provider.default_url}"
            )

    def find_cli(self, given: str | None) -> str:
        if given:
            return executable(given, "--isobench-trae-cli")
        if found := which(("trae-cli",)):
            return found
        raise ValueError(f"no trae-cli found (looked at --isobench-trae-cli and PATH). {INSTALL_HINT}")

    def config_text(self, base_url: str, max_steps: int) -> str:
        """TRAE's config YAML for this agent (no key: TRAE reads it from ``<PROVIDER>_API_KEY``)."""
        p = self.provider
        lines = [
            "agents:",
            "  trae_agent:",
            "    enable_lakeview: false",
            f"    model: {MODEL_KEY}",
            f"    max_steps: {max_steps}",
            "    tools:",
            *(f"      - {tool}" for tool in TOOLS),
            "model_providers:",
            f"  {p.name}:",
            '    api_key: ""',
            f"    provider: {p.name}",
            f"    base_url: {json.dumps(base_url)}",
            "models:",
            f"  {MODEL_KEY}:",
            f"    model_provider: {p.name}",
            f"    model: {json.dumps(self.model)}",
            f"    max_tokens: {MAX_TOKENS}",
            "    temperature: 0.5",
            "    top_p: 1",
            "    top_k: 0",
            "    max_retries: 0",  # the SDK's own retries stay; TRAE's add 3-30 s sleeps each
            "    parallel_tool_calls: false",
        ]
        return "\n".join(lines) + "\n"

    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        p = self.provider
        access = ctx.model_access
        base_url = access.url(p.name) if access is not None else p.default_url
        turns = self.options.max_turns
        argv = [cli, "run", ctx.prompt, "--config-file", str(home / CONFIG_NAME)]
        argv += ["--working-dir", str(ctx.workdir)]
        if turns is not None:
            argv += ["--max-steps", str(turns)]
        argv += ["--trajectory-file", str(home / TRAJECTORY_NAME), "--patch-path", str(home / PATCH_NAME)]
        argv += ["--console-type", "simple"]
        env = {p.url_var: base_url, "PYTHONUNBUFFERED": "1"}
        if access is not None and (key := access.key(p.name)):
            env[p.key_vars[0]] = key
        config = self.config_text(base_url, turns if turns is not None else DEFAULT_MAX_STEPS)
        return Launch(argv=argv, env=env, files={CONFIG_NAME: config})

    def parse(self, files: AttemptFiles) -> Attempt:
        path = files.home / TRAJECTORY_NAME
        trajectory = read_trajectory(path)
        if trajectory is None:
            reason = crash_reason(files) or "trae-cli wrote no trajectory"
            return Attempt("crashed", error=reason)
        attempt = attempt_from_trajectory(trajectory, self.provider.name)
        attempt.keep = [path]
        if attempt.stop_reason == "crashed" and not attempt.error:
            attempt.error = crash_reason(files) or "trae-cli stopped without finishing its task"
        return attempt


def read_trajectory(path: Path) -> dict[str, Any] | None:
    """TRAE's trajectory file, or None when it is missing or torn (killed while writing it)."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        if isinstance(data, dict):
            return data
    return None


def crash_reason(files: AttemptFiles) -> str:
    """Why trae-cli stopped: its exit code and the ends of stderr and stdout (its errors go to stdout)."""
    parts = [f"exit code {files.result.returncode}"] if files.result.returncode not in (0, None) else []
    parts += [tail for log in (files.stderr, files.stdout) if (tail := stderr_tail(log, 10).strip())]
    return _clip("\n".join(parts))


def attempt_from_trajectory(data: dict[str, Any], provider: str) -> Attempt:
    """How the attempt ended, its turns, tokens and normalised steps, from TRAE's trajectory."""
    interactions = [i for i in data.get("llm_interactions") or [] if isinstance(i, dict)]
    agent_steps = [s for s in data.get("agent_steps") or [] if isinstance(s, dict)]
    totals = Tokens()
    per_call = []
    for interaction in interactions:
        tokens = usage_tokens(interaction, provider)
        per_call.append(tokens)
        totals.input += tokens.input
        totals.output += tokens.output
        totals.cached += tokens.cached
    stop, error = stop_reason(data, agent_steps)
    model = data.get("model") if isinstance(data.get("model"), str) and data.get("model") else None
    return Attempt(
        stop_reason=stop,
        turns=len(interactions),
        tokens=totals,
        model=model,
        error=error,
        steps=normalised_steps(agent_steps, interactions, per_call),
    )


def usage_tokens(interaction: dict[str, Any], provider: str) -> Tokens:
    """One model call's tokens. Anthropic's ``input_tokens`` leave out cache reads and writes."""
    response = interaction.get("response")
    usage = (response.get("usage") if isinstance(response, dict) else None) or {}
    number = {k: v if isinstance(v, int) else 0 for k, v in usage.items()}
    fresh, cached = number.get("input_tokens", 0), number.get("cache_read_input_tokens", 0)
    if (interaction.get("provider") or provider) == "anthropic":
        fresh += cached + number.get("cache_creation_input_tokens", 0)
    return Tokens(input=fresh, output=number.get("output_tokens", 0), cached=cached)


def stop_reason(data: dict[str, Any], agent_steps: list[dict[str, Any]]) -> tuple[str, str | None]:
    """(stop reason, error): success, the model API failing, the step limit, or anything else."""
    if data.get("success") is True:
        return "completed", None
    errors = [str(step["error"]) for step in agent_steps if step.get("error")]
    if errors:
        text = _clip(redact(errors[-1]))
        return ("api_error" if is_api_error(errors[-1]) else "crashed"), text
    final = data.get("final_result")
    if isinstance(final, str) and MAX_STEPS_TEXT in final:
        return "max_turns", None
    if isinstance(final, str) and final.startswith("Agent execution failed"):
        return "crashed", _clip(redact(final))
    return "crashed", None


def is_api_error(text: str) -> bool:
    """Whether a step's error is the model API's failure (auth, rate limit, 5xx, no connection)."""
    if match := _STATUS.search(text):
        status = int(match.group(1))
        return status >= 500 or status in API_STATUSES
    return any(marker in text for marker in _NO_ANSWER)


def normalised_steps(
    agent_steps: list[dict[str, Any]], interactions: list[dict[str, Any]], per_call: list[Tokens]
) -> list[dict[str, Any]]:
    """The trajectory schema's steps: one ``model`` step per call, its tool calls, their results."""
    steps: list[dict[str, Any]] = []
    calls = iter(zip(interactions, per_call, strict=True))
    for agent_step in agent_steps:
        response = agent_step.get("llm_response")
        if isinstance(response, dict):
            interaction, tokens = next(calls, ({"response": response}, None))
            _add_model_step(steps, interaction.get("response") or response, tokens)
        for result in agent_step.get("tool_results") or []:
            if isinstance(result, dict):
                failed = result.get("success") is False
                output = result.get("error") if failed and result.get("error") else result.get("result")
                steps.append(
                    {
                        "kind": "tool_result",
                        "tool": _tool_name(steps, result.get("call_id")),
                        "output": "" if output is None else str(output),
                        "is_error": failed,
                    }
                )
        if agent_step.get("error"):
            steps.append({"kind": "model", "text": "", "error": redact(str(agent_step["error"]))})
    for interaction, tokens in calls:  # calls no agent step recorded (the trajectory was cut short)
        _add_model_step(steps, interaction.get("response") or {}, tokens)
    return steps


def _add_model_step(steps: list[dict[str, Any]], response: dict[str, Any], tokens: Tokens | None) -> None:
    step: dict[str, Any] = {"kind": "model", "text": str(response.get("content") or "")}
    if tokens is not None:
        step["tokens"] = tokens.to_wire()
    steps.append(step)
    for call in response.get("tool_calls") or []:
        if isinstance(call, dict):
            steps.append(
                {
                    "kind": "tool_call",
                    "tool": str(call.get("name") or ""),
                    "id": call.get("call_id"),
                    "input": call.get("arguments") or {},
                }
            )


def _tool_name(steps: list[dict[str, Any]], call_id: Any) -> str:
    for step in reversed(steps):
        if step["kind"] == "tool_call" and step.get("id") == call_id:
            return str(step["tool"])
    return ""


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 3] + "..."
