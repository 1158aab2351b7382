"""A scripted fake model for TRAE-agent, on 127.0.0.1: the three wire APIs TRAE speaks, not streamed.

- ``POST /v1/responses`` (provider ``openai``: OpenAI Responses, one JSON object),
- ``POST /v1/chat/completions`` (``openrouter`` and other OpenAI-compatible providers),
- ``POST /v1/messages`` (``anthropic``: Anthropic Messages).

Each reply is chosen from the conversation in the request (how many tool results it carries), never
from a request counter, so the SDKs' retries stay deterministic. Scenarios:

- ``fix``: for a smoke task (found in the prompt), read each file of its fix with ``bash``, replace
  its content with ``str_replace_based_edit_tool``, then call ``task_done``; for any other prompt,
  one ``ls`` and ``task_done``;
- ``error500``: every request gets HTTP 500;
- ``loop``: ``bash echo looping`` forever;
- ``daemon``: start a process in a new session (``setsid``) carrying ``marker``, then loop.

``echo_key`` makes each reply also say the API key the request carried (a CLI that writes model text
to its records then holds the key: the harness must redact it). ``totals`` sums the tokens the server
reported in successful replies, counted like the harness counts them (input includes cached).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from http_fake import HttpFake
from smoke_fixes import fix_for, workdir_in

RESPONSES = "/v1/responses"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
SCENARIOS = ("fix", "error500", "loop", "daemon")


@dataclass
class Call:
    """One tool call the fake model asks for: the tool and its arguments (every property, for strict
    schemas: the unused ones are null)."""

    name: str
    arguments: dict[str, Any]


def bash(command: str) -> Call:
    return Call("bash", {"command": command, "restart": False})


def edit(**arguments: Any) -> Call:
    unused = dict.fromkeys(("file_text", "insert_line", "new_str", "old_str", "view_range"))
    return Call("str_replace_based_edit_tool", {**unused, **arguments})


DONE = Call("task_done", {})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeTraeModel(HttpFake):
    """The server, its scenario and what it received and reported."""

    scenario: str = "fix"
    port: int = 0
    marker: str = ""  # the daemon scenario's process marker
    flag: str = ""  # the daemon scenario: a file the daemon writes once it runs
    echo_key: bool = False
    received: list[Received] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0, "cached": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        assert self.scenario in SCENARIOS, self.scenario
        super().__init__(_handler(self), port=self.port)

    @property
    def openai_base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.root  # the Anthropic SDK adds /v1 itself

    def close(self) -> None:
        self.__exit__()

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.received]

    # ---- the script ------------------------------------------------------------------------------

    def plan(self, text: str) -> list[Call]:
        """The tool calls of the whole conversation, from its first request's text."""
        if self.scenario == "fix":
            fix, workdir = fix_for(text), workdir_in(text)
            if fix is None or workdir is None:
                return [bash("ls"), DONE]
            reads = [bash(f"cat {shlex.quote(f.path)}") for f in fix.files]
            edits = [
                edit(command="str_replace", path=f"{workdir}/{f.path}", old_str=f.old, new_str=f.new)
                for f in fix.files
            ]
            return [*reads, *edits, DONE]
        if self.scenario == "daemon":
            sleeper = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(1000)' {self.marker}"
            start = (
                f"setsid sh -c {shlex.quote(f'echo started > {self.flag}; exec {sleeper}')} >/dev/null 2>&1 &"
            )
            return [bash(start)]
        return []

    def next_call(self, text: str, done: int) -> Call:
        plan = self.plan(text)
        return plan[done] if done < len(plan) else bash("echo looping")

    def usage(self, done: int) -> tuple[int, int, int]:
        """(input including cached, cached, output) of the reply after ``done`` tool results."""
        return 1000 + 100 * done, 400 + 10 * done, 20 + done

    def count(self, total_input: int, cached: int, output: int) -> None:
        with self.lock:
            self.totals["input"] += total_input
            self.totals["cached"] += cached
            self.totals["output"] += output


def _key(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ").strip() or headers.get("x-api-key", "")


def _responses(fake: FakeTraeModel, body: dict[str, Any], key: str) -> dict[str, Any]:
    items = body.get("input") or []
    done = sum(1 for item in items if isinstance(item, dict) and item.get("type") == "function_call_output")
    call = fake.next_call(json.dumps(items), done)
    total, cached, output = fake.usage(done)
    fake.count(total, cached, output)
    out: list[dict[str, Any]] = []
    if fake.echo_key:
        text = {"type": "output_text", "text": f"the key I was sent: {key}", "annotations": []}
        out.append({"type": "message", "id": f"msg_{uuid.uuid4().hex}", "role": "assistant",
                    "status": "completed", "content": [text]})  # fmt: skip
    out.append(
        {
            "type": "function_call",
            "id": f"fc_{uuid.uuid4().hex}",
            "call_id": f"call_{uuid.uuid4().hex}",
            "name": call.name,
            "arguments": json.dumps(call.arguments),
            "status": "completed",
        }
    )
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": body.get("model"),
        "output": out,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "usage": {
            "input_tokens": total,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": total + output,
        },
    }


def _chat(fake: FakeTraeModel, body: dict[str, Any], key: str) -> dict[str, Any]:
    messages = body.get("messages") or []
    done = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
    call = fake.next_call(json.dumps(messages), done)
    total, _, output = fake.usage(done)
    fake.count(total, 0, output)  # TRAE reads no cached figure from chat completions
    tool_call = {
        "id": f"call_{uuid.uuid4().hex}",
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }
    message = {
        "role": "assistant",
        "content": f"the key I was sent: {key}" if fake.echo_key else None,
        "tool_calls": [tool_call],
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": total, "completion_tokens": output, "total_tokens": total + output},
    }


def _messages(fake: FakeTraeModel, body: dict[str, Any], key: str) -> dict[str, Any]:
    messages = body.get("messages") or []
    done = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            done += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    call = fake.next_call(json.dumps(messages), done)
    total, cached, output = fake.usage(done)
    fake.count(total, cached, output)
    created = 30
    blocks: list[dict[str, Any]] = []
    if fake.echo_key:
        blocks.append({"type": "text", "text": f"the key I was sent: {key}"})
    arguments = {k: v for k, v in call.arguments.items() if v is not None}
    blocks.append(
        {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex}", "name": call.name, "input": arguments}
    )
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": blocks,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": total - cached - created,  # Anthropic's input leaves out the cache's share
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": created,
            "output_tokens": output,
        },
    }


REPLIES = {RESPONSES: _responses, CHAT: _chat, MESSAGES: _messages}


def _handler(fake: FakeTraeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            path = self.path.split("?", 1)[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            with fake.lock:
                fake.received.append(Received(path, headers, body))
            reply = REPLIES.get(path)
            if reply is None:
                self._send(404, {"error": {"message": f"no such path {path}", "type": "not_found"}})
            elif fake.scenario == "error500":
                error = {"message": "Internal server error (fake)", "type": "server_error"}
                if path == MESSAGES:
                    self._send(500, {"type": "error", "error": {**error, "type": "api_error"}})
                else:
                    self._send(500, {"error": error})
            else:
                self._send(200, reply(fake, body, _key(headers)))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("retry-after-ms", "10")  # the SDKs' retries of a 500 stay fast
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve one scenario until interrupted, printing the base URLs to give TRAE."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--scenario", choices=("fix", "error500", "loop"), default="fix")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with FakeTraeModel(scenario=args.scenario, port=args.port) as fake:
        print(f"OPENAI_BASE_URL={fake.openai_base_url}", flush=True)
        print(f"OPENROUTER_BASE_URL={fake.openai_base_url}", flush=True)
        print(f"ANTHROPIC_BASE_URL={fake.anthropic_base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
