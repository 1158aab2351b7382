"""A small stand-in for TRAE-agent's ``trae-cli`` (which needs Python >= 3.12 and is not on PyPI).

It takes the real command line (``run TASK --config-file --working-dir --max-steps --trajectory-file
--patch-path --console-type``), reads the real config YAML (the block subset TRAE's configs use),
resolves the key and base URL as TRAE does (``<PROVIDER>_API_KEY`` / ``<PROVIDER>_BASE_URL`` over the
config), talks to the model with the official SDKs as TRAE does (provider ``openai``: the Responses
API, not streamed; ``anthropic``: Messages, not streamed; ``openrouter`` and the others: chat
completions), runs the tools the model asks for (``bash`` in a new session, ``str_replace_based_edit_tool``,
``sequentialthinking``, ``task_done``) in the working directory, and writes TRAE's trajectory JSON
after every step. Like the real one it exits 0 when the model API fails, and ``success: false``
says so. Nothing here comes from TRAE's sources: it is written from its documented behaviour.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SYSTEM = (
    "You are a software engineering agent working in a repository. Use the tools to inspect and"
    " change files (absolute paths), and call task_done when the work is finished."
)
MAX_STEPS_TEXT = "Task execution exceeded maximum steps without completion."
TOOL_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "bash": (
        "Run a bash command in the working directory.",
        {"command": {"type": "string"}, "restart": {"type": "boolean"}},
    ),
    "str_replace_based_edit_tool": (
        "View, create and edit files: view, create, str_replace, insert.",
        {
            "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]},
            "file_text": {"type": "string"},
            "insert_line": {"type": "integer"},
            "new_str": {"type": "string"},
            "old_str": {"type": "string"},
            "path": {"type": "string"},
            "view_range": {"type": "array", "items": {"type": "integer"}},
        },
    ),
    "sequentialthinking": ("Think step by step.", {"thought": {"type": "string"}}),
    "task_done": ("Report that the task is complete.", {}),
}


# ---- config ----------------------------------------------------------------------------------------


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~", ""):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_yaml(text: str) -> Any:
    """Block mappings, block lists of scalars and plain or quoted scalars: what TRAE configs hold."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))

    def block(start: int, indent: int) -> tuple[Any, int]:
        if start < len(lines) and lines[start][1].startswith("- "):
            items, i = [], start
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                items.append(_scalar(lines[i][1][2:]))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        i = start
        while i < len(lines) and lines[i][0] == indent:
            key, _, rest = lines[i][1].partition(":")
            i += 1
            if rest.strip():
                mapping[key.strip()] = _scalar(rest)
            elif i < len(lines) and lines[i][0] > indent:
                mapping[key.strip()], i = block(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                mapping[key.strip()], i = block(i, indent)
            else:
                mapping[key.strip()] = None
        return mapping, i

    return block(0, lines[0][0])[0] if lines else {}


def load_config(path: str, max_steps: int | None) -> dict[str, Any]:
    """Agent, model and provider settings, with the environment over the file as TRAE resolves them."""
    if path.endswith(".json"):
        raise SystemExit("the stand-in reads YAML configs only")
    data = read_yaml(Path(path).read_text(encoding="utf-8"))
    agent = data["agents"]["trae_agent"]
    model = dict(data["models"][agent["model"]])
    provider = dict(data["model_providers"][model["model_provider"]])
    name = str(provider["provider"])
    if "api_key" not in provider:
        raise SystemExit("config: model provider needs an api_key entry")
    key = os.environ.get(f"{name.upper()}_API_KEY") or provider.get("api_key") or ""
    base_url = os.environ.get(f"{name.upper()}_BASE_URL") or provider.get("base_url")
    return {
        "provider": name,
        "api_key": key,
        "base_url": base_url,
        "model": model["model"],
        "max_tokens": model.get("max_tokens") or 4096,
        "max_steps": max_steps if max_steps is not None else int(agent["max_steps"]),
        "tools": agent.get("tools") or list(TOOL_SCHEMAS),
    }


# ---- tools ----------------------------------------------------------------------------------------


def run_tool(name: str, args: dict[str, Any], workdir: str) -> tuple[bool, str, str]:
    """(success, result, error) of one tool call."""
    try:
        if name == "bash":
            return _bash(str(args.get("command") or ""), workdir)
        if name == "str_replace_based_edit_tool":
            return True, _edit(args), ""
        if name == "sequentialthinking":
            return True, "Thought recorded.", ""
        return False, "", f"unknown tool {name}"
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return False, "", str(exc)


def _bash(command: str, workdir: str) -> tuple[bool, str, str]:
    # As TRAE's own bash tool: the command runs in a new session.
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode == 0, done.stdout.rstrip("\n"), done.stderr.rstrip("\n")


def _edit(args: dict[str, Any]) -> str:
    path = Path(str(args.get("path") or ""))
    if not path.is_absolute():
        raise ValueError(f"The path {path} is not an absolute path")
    command = args.get("command")
    if command == "view":
        lines = path.read_text(encoding="utf-8").splitlines()
        return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, 1))
    if command == "create":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(args.get("file_text") or ""), encoding="utf-8")
        return f"File created successfully at: {path}"
    text = path.read_text(encoding="utf-8")
    if command == "str_replace":
        old, new = str(args.get("old_str") or ""), str(args.get("new_str") or "")
        if text.count(old) != 1:
            raise ValueError(f"old_str found {text.count(old)} times in {path}; it must occur once")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return f"The file {path} has been edited."
    if command == "insert":
        lines = text.splitlines(keepends=True)
        at = int(args.get("insert_line") or 0)
        lines[at:at] = [str(args.get("new_str") or "") + "\n"]
        path.write_text("".join(lines), encoding="utf-8")
        return f"The file {path} has been edited."
    raise ValueError(f"unknown command {command!r}")


# ---- model clients: one call, the provider's native history ----------------------------------------


class Client:
    def __init__(self, cfg: dict[str, Any], task_text: str) -> None:
        self.cfg = cfg
        self.provider = cfg["provider"]
        names = [t for t in cfg["tools"] if t in TOOL_SCHEMAS]
        if self.provider == "anthropic":
            import anthropic

            self.anthropic = anthropic.Anthropic(api_key=cfg["api_key"], base_url=cfg["base_url"])
            self.history: list[Any] = [{"role": "user", "content": task_text}]
            self.tools: list[dict[str, Any]] = [
                {"name": n, "description": d, "input_schema": {"type": "object", "properties": p}}
                for n, (d, p) in ((n, TOOL_SCHEMAS[n]) for n in names)
            ]
        else:
            import openai

            self.openai = openai.OpenAI(api_key=cfg["api_key"], base_url=cfg["base_url"])
            if self.provider == "openai":  # Responses API with strict schemas
                self.history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task_text}]
                self.tools = [
                    {
                        "type": "function",
                        "name": n,
                        "description": TOOL_SCHEMAS[n][0],
                        "strict": True,
                        "parameters": {
                            "type": "object",
                            "properties": TOOL_SCHEMAS[n][1],
                            "required": list(TOOL_SCHEMAS[n][1]),
                            "additionalProperties": False,
                        },
                    }
                    for n in names
                ]
            else:
                self.history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task_text}]
                self.tools = [
                    {
                        "type": "function",
                        "function": {
                            "name": n,
                            "description": TOOL_SCHEMAS[n][0],
                            "parameters": {"type": "object", "properties": TOOL_SCHEMAS[n][1]},
                        },
                    }
                    for n in names
                ]

    def chat(self) -> dict[str, Any]:
        """One model call: {content, model, finish_reason, usage, tool_calls} as TRAE records it."""
        cfg = self.cfg
        calls: list[dict[str, Any]] = []
        if self.provider == "anthropic":
            reply = self.anthropic.messages.create(
                model=cfg["model"],
                max_tokens=cfg["max_tokens"],
                system=SYSTEM,
                messages=self.history,
                tools=self.tools,  # type: ignore[arg-type]
            )
            text = "".join(b.text for b in reply.content if b.type == "text")
            for b in reply.content:
                if b.type == "tool_use":
                    calls.append({"call_id": b.id, "name": b.name, "arguments": dict(b.input), "id": None})
            self.history.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
            u = reply.usage
            usage = {
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cache_creation_input_tokens": u.cache_creation_input_tokens or 0,
                "cache_read_input_tokens": u.cache_read_input_tokens or 0,
                "reasoning_tokens": None,
            }
            return {"content": text, "model": reply.model, "finish_reason": reply.stop_reason,
                    "usage": usage, "tool_calls": calls or None}  # fmt: skip
        if self.provider == "openai":
            response = self.openai.responses.create(
                input=self.history,
                model=cfg["model"],
                tools=self.tools,  # type: ignore[arg-type]
                max_output_tokens=cfg["max_tokens"],
            )
            text = ""
            for item in response.output:
                if item.type == "function_call":
                    arguments = json.loads(item.arguments) if item.arguments else {}
                    calls.append(
                        {"call_id": item.call_id, "name": item.name, "arguments": arguments, "id": item.id}
                    )
                    self.history.append({"type": "function_call", "call_id": item.call_id, "name": item.name,
                                         "arguments": item.arguments, "id": item.id})  # fmt: skip
                elif item.type == "message":
                    text = "".join(c.text for c in item.content if c.type == "output_text")
            if text:
                self.history.append({"role": "assistant", "content": text})
            ru = response.usage
            usage = {
                "input_tokens": ru.input_tokens if ru else 0,
                "output_tokens": ru.output_tokens if ru else 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": ru.input_tokens_details.cached_tokens if ru else 0,
                "reasoning_tokens": ru.output_tokens_details.reasoning_tokens if ru else 0,
            }
            return {"content": text, "model": response.model, "finish_reason": response.status,
                    "usage": usage, "tool_calls": calls or None}  # fmt: skip
        completion = self.openai.chat.completions.create(
            model=cfg["model"],
            messages=self.history,
            tools=self.tools,  # type: ignore[arg-type]
            max_tokens=cfg["max_tokens"],
        )
        choice = completion.choices[0]
        for tc in choice.message.tool_calls or []:
            fn = tc.function  # type: ignore[union-attr]
            calls.append(
                {"call_id": tc.id, "name": fn.name, "arguments": json.loads(fn.arguments or "{}"), "id": None}
            )
        self.history.append(choice.message.model_dump(exclude_none=True))
        cu = completion.usage
        usage = {
            "input_tokens": cu.prompt_tokens if cu else 0,
            "output_tokens": cu.completion_tokens if cu else 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "reasoning_tokens": None,
        }
        text = choice.message.content or ""
        return {"content": text, "model": completion.model, "finish_reason": choice.finish_reason,
                "usage": usage, "tool_calls": calls or None}  # fmt: skip

    def add_results(self, results: list[dict[str, Any]]) -> None:
        def text(r: dict[str, Any]) -> str:
            return (str(r["result"] or "") + (f"\nError: {r['error']}" if r["error"] else "")).strip()

        if self.provider == "anthropic":
            blocks = [
                {"type": "tool_result", "tool_use_id": r["call_id"], "content": text(r)} for r in results
            ]
            self.history.append({"role": "user", "content": blocks})
        elif self.provider == "openai":
            for r in results:
                self.history.append(
                    {"type": "function_call_output", "call_id": r["call_id"], "output": text(r)}
                )
        else:
            for r in results:
                self.history.append({"role": "tool", "tool_call_id": r["call_id"], "content": text(r)})


# ---- the run ----------------------------------------------------------------------------------------


class Recorder:
    """TRAE's trajectory file, saved after every change."""

    def __init__(self, path: str, task: str, cfg: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start = dt.datetime.now()
        self.data: dict[str, Any] = {
            "task": task,
            "start_time": self.start.isoformat(),
            "end_time": "",
            "provider": cfg["provider"],
            "model": cfg["model"],
            "max_steps": cfg["max_steps"],
            "llm_interactions": [],
            "agent_steps": [],
            "success": False,
            "final_result": None,
            "execution_time": 0.0,
        }
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2, ensure_ascii=False), encoding="utf-8")

    def interaction(
        self, messages: list[dict[str, Any]], response: dict[str, Any], cfg: dict[str, Any]
    ) -> None:
        self.data["llm_interactions"].append(
            {
                "timestamp": dt.datetime.now().isoformat(),
                "provider": cfg["provider"],
                "model": cfg["model"],
                "input_messages": messages,
                "response": response,
                "tools_available": list(cfg["tools"]),
            }
        )
        self.save()

    def step(self, number: int, messages: list[dict[str, Any]], response: dict[str, Any] | None,
             results: list[dict[str, Any]] | None, error: str | None) -> None:  # fmt: skip
        brief = None
        if response is not None:
            usage = {k: response["usage"][k] for k in ("input_tokens", "output_tokens")}
            brief = {**response, "usage": usage}
        self.data["agent_steps"].append(
            {
                "step_number": number,
                "timestamp": dt.datetime.now().isoformat(),
                "state": "completed",
                "llm_messages": messages,
                "llm_response": brief,
                "tool_calls": None if results is None or response is None else response["tool_calls"],
                "tool_results": results,
                "reflection": None,
                "error": error,
            }
        )
        self.save()

    def finish(self, success: bool, final_result: str | None) -> None:
        end = dt.datetime.now()
        self.data.update(
            end_time=end.isoformat(),
            success=success,
            final_result=final_result,
            execution_time=(end - self.start).total_seconds(),
        )
        self.save()


def run(args: argparse.Namespace) -> int:
    task = Path(args.file).read_text(encoding="utf-8") if args.file else args.task
    if not task:
        print("Error: Must provide either a task string or use the --file argument.")
        return 1
    cfg = load_config(args.config_file, args.max_steps)
    workdir = os.path.abspath(args.working_dir or os.getcwd())
    print(f"Changed working directory to: {workdir}", flush=True)
    os.chdir(workdir)
    trajectory = args.trajectory_file or f"trajectories/trajectory_{time.strftime('%Y%m%d_%H%M%S')}.json"
    recorder = Recorder(trajectory, task, cfg)
    task_text = f"[Project root path]:\n{workdir}\n\n[Problem statement]:\n{task}\n"
    client = Client(cfg, task_text)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": task_text},
    ]
    success, final_result, tokens = False, None, [0, 0]
    for number in range(1, cfg["max_steps"] + 1):
        try:
            response = client.chat()
        except Exception as exc:  # the SDK's error, after its own retries: recorded, and the run ends
            recorder.step(number, messages, None, None, str(exc))
            print(f"Step {number}: error: {exc}", flush=True)
            break
        recorder.interaction(messages, response, cfg)
        tokens[0] += response["usage"]["input_tokens"]
        tokens[1] += response["usage"]["output_tokens"]
        calls = response["tool_calls"] or []
        if any(c["name"] == "task_done" for c in calls):
            recorder.step(number, messages, response, None, None)
            success, final_result = True, response["content"]
            print(f"Step {number}: task done | Input: {tokens[0]} Output: {tokens[1]}", flush=True)
            break
        results = []
        for call in calls:
            ok, result, error = run_tool(call["name"], call["arguments"], workdir)
            results.append({"call_id": call["call_id"], "success": ok, "result": result, "error": error,
                            "id": call["id"]})  # fmt: skip
            print(f"Step {number}: {call['name']} -> {'ok' if ok else 'failed'}", flush=True)
        recorder.step(number, messages, response, results, None)
        client.add_results(results)
        messages = [{"role": "user", "content": None, "tool_result": r} for r in results]
        if not calls:
            messages = [{"role": "user", "content": "It seems that you have not completed the task."}]
            client.history.append({"role": "user", "content": messages[0]["content"]})
    else:
        final_result = MAX_STEPS_TEXT
    recorder.finish(success, final_result)
    if args.patch_path:
        diff = subprocess.run(["git", "diff"], cwd=workdir, capture_output=True, text=True, check=False)
        Path(args.patch_path).write_text(diff.stdout, encoding="utf-8")
    print(f"Success: {'Yes' if success else 'No'} | Input Tokens: {tokens[0]} | Output Tokens: {tokens[1]}")
    print(f"Trajectory saved to: {trajectory}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trae-cli")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("task", nargs="?")
    r.add_argument("--file", "-f")
    r.add_argument("--provider", "-p")
    r.add_argument("--model", "-m")
    r.add_argument("--model-base-url")
    r.add_argument("--api-key", "-k")
    r.add_argument("--max-steps", type=int)
    r.add_argument("--working-dir", "-w")
    r.add_argument("--must-patch", "-mp", action="store_true")
    r.add_argument("--config-file", default=os.environ.get("TRAE_CONFIG_FILE", "trae_config.yaml"))
    r.add_argument("--trajectory-file", "-t")
    r.add_argument("--patch-path", "-pp")
    r.add_argument("--console-type", "-ct", choices=["simple", "rich"], default="simple")
    r.add_argument("--agent-type", "-at", choices=["trae_agent"], default="trae_agent")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
