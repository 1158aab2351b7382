"""A scripted fake of the OpenAI Responses API on 127.0.0.1, playing a coding agent's model for Codex.

Each reply is chosen from the conversation in the request (how many tool outputs it already holds),
never from a request counter, so a retried request gets the same reply. Replies are streamed (SSE:
one ``response.output_item.done`` per item, then ``response.completed`` with the usage) or, for a
request with ``"stream": false``, one Responses JSON object. Every successful reply carries a known
usage, and the server adds up what it sent (:attr:`FakeResponses.sent`), so a test can compare the
tokens the harness recorded with what the model really reported.

Scenarios (``SCENARIOS``):

- ``fix``: for the smoke task the prompt is about (``smoke_fixes.fix_for``): one ``exec_command``
  ``cat PATH`` per file of the fix, then one ``apply_patch`` call that replaces those files' lines
  (paths relative to the working copy, the agent's cwd), then a final assistant message. A request
  that offers no ``apply_patch`` (Codex with a model id missing from its catalog) gets a shell command
  that writes the fixed files instead;
- ``error500``: every request gets an HTTP 500;
- ``loop``: ``exec_command`` ``env`` forever (what the agent's commands can see ends up in its logs);
- ``daemon``: first an ``exec_command`` that starts a detached daemon (``setsid``, its command line
  holding :attr:`FakeResponses.marker`), then like ``loop``.

Standalone, ``python tests/fake_responses_agent.py --scenario fix`` prints
``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1`` and serves until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from http_fake import HttpFake
from smoke_fixes import FileFix, fix_for

SCENARIOS = ("fix", "error500", "loop", "daemon")
TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")
LOOP_COMMAND = "env"  # what the looping model runs: also shows what the agent's commands can see
FINAL_TEXT = "I made the change; the benchmark should be faster now."
ERROR_MESSAGE = "scripted failure: the fake model is down"


@dataclass(frozen=True)
class Usage:
    input: int
    cached: int
    output: int
    reasoning: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        }


@dataclass
class Sent:
    """What the server answered with, added up: its replies and their usage."""

    replies: int = 0
    input: int = 0
    cached: int = 0
    output: int = 0

    def add(self, usage: Usage) -> None:
        self.replies += 1
        self.input += usage.input
        self.cached += usage.cached
        self.output += usage.output


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


def tool_outputs(body: dict[str, Any]) -> int:
    """How far the conversation is: the tool outputs the request sends back."""
    items = body.get("input") or []
    return sum(1 for item in items if isinstance(item, dict) and item.get("type") in TOOL_OUTPUTS)


def usage_for(step: int) -> Usage:
    """The usage of the reply at ``step`` (tool outputs so far): distinct per step, known in advance."""
    return Usage(input=1200 + 100 * step, cached=500 + 10 * step, output=40 + 7 * step, reasoning=3)


class FakeResponses(HttpFake):
    """The server: one scenario, its log of requests, and the usage it sent."""

    def __init__(self, scenario: str, marker: str | None = None) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.marker = marker or f"isobench-daemon-{uuid.uuid4().hex}"
        self.received: list[Received] = []
        self.sent = Sent()
        self.lock = threading.Lock()
        super().__init__(_handler(self))

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    # ---- the script ------------------------------------------------------------------------------

    def reply(self, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        """The HTTP status and output items for a request (500 carries no items)."""
        if self.scenario == "error500":
            return 500, []
        items = body.get("input") or []
        step = tool_outputs(body)
        if self.scenario == "loop" or (self.scenario == "daemon" and step > 0):
            return 200, [exec_call(step, LOOP_COMMAND)]
        if self.scenario == "daemon":
            daemon = (
                f"setsid python3 -c 'import time; time.sleep(600)' {self.marker} >/dev/null 2>&1 </dev/null &"
            )
            return 200, [exec_call(step, daemon)]
        fix = fix_for(json.dumps(items))
        if fix is None:
            return 200, [message("This is not a task I know.")]
        if step < len(fix.files):
            return 200, [exec_call(step, f"cat {fix.files[step].path}")]
        if step == len(fix.files) and "apply_patch" in offered_tools(body):
            return 200, [patch_call(step, fix.files)]
        if step == len(fix.files):  # a model id missing from Codex's catalog gets no apply_patch
            return 200, [exec_call(step, write_command(fix.files))]
        return 200, [message(FINAL_TEXT)]


def exec_call(step: int, command: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{step}",
        "call_id": f"call_exec_{step}",
        "name": "exec_command",
        "arguments": json.dumps({"cmd": command}),
        "status": "completed",
    }


def patch_text(files: tuple[FileFix, ...]) -> str:
    """An ``apply_patch`` patch that replaces each file's lines (old lines out, new lines in)."""
    lines = ["*** Begin Patch"]
    for fix in files:
        lines += [f"*** Update File: {fix.path}", "@@"]
        lines += ["-" + line for line in fix.old.splitlines()]
        lines += ["+" + line for line in fix.new.splitlines()]
    lines.append("*** End Patch")
    return "\n".join(lines) + "\n"


def offered_tools(body: dict[str, Any]) -> set[str]:
    return {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)}


def write_command(files: tuple[FileFix, ...]) -> str:
    """A shell command that writes the fixed files (for a Codex that offers no ``apply_patch``)."""
    writes = "".join(f"pathlib.Path({fix.path!r}).write_text({fix.new!r})\n" for fix in files)
    return f"python3 - <<'ISOBENCH_EOF'\nimport pathlib\n{writes}ISOBENCH_EOF"


def patch_call(step: int, files: tuple[FileFix, ...]) -> dict[str, Any]:
    return {
        "type": "custom_tool_call",
        "id": f"ctc_{step}",
        "call_id": f"call_patch_{step}",
        "name": "apply_patch",
        "input": patch_text(files),
        "status": "completed",
    }


def message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_final",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_object(rid: str, model: str, items: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": 1796046181,
        "status": "completed",
        "model": model,
        "output": items,
        "usage": usage.to_wire(),
    }


def sse_events(rid: str, model: str, items: list[dict[str, Any]], usage: Usage) -> Iterator[bytes]:
    created = {"id": rid, "object": "response", "status": "in_progress", "model": model, "output": []}
    events: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": created})]
    for index, item in enumerate(items):
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    events.append(("response.completed", {"response": response_object(rid, model, items, usage)}))
    for seq, (kind, data) in enumerate(events):
        payload = json.dumps({"type": kind, "sequence_number": seq, **data})
        yield f"event: {kind}\ndata: {payload}\n\n".encode()


def _handler(fake: FakeResponses) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = {}
            path = self.path.split("?", 1)[0]
            with fake.lock:
                fake.received.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
            if path != "/v1/responses" or not isinstance(body, dict):
                self._json(404, {"error": {"message": f"no such endpoint {path}", "type": "not_found"}})
                return
            status, items = fake.reply(body)
            if status != 200:
                error = {"message": ERROR_MESSAGE, "type": "server_error", "param": None, "code": None}
                self._json(status, {"error": error})
                return
            step = sum(
                1 for i in body.get("input") or [] if isinstance(i, dict) and i.get("type") in TOOL_OUTPUTS
            )
            usage = usage_for(step)
            rid = f"resp_{uuid.uuid4().hex[:24]}"
            model = str(body.get("model") or "")
            with fake.lock:
                fake.sent.add(usage)
            if body.get("stream") is False:
                self._json(200, response_object(rid, model, items, usage))
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for chunk in sse_events(rid, model, items, usage):
                    self.wfile.write(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A scripted fake OpenAI Responses API for Codex.")
    parser.add_argument("--scenario", choices=SCENARIOS, default="fix")
    args = parser.parse_args(argv)
    with FakeResponses(args.scenario) as fake:
        print(f"OPENAI_BASE_URL={fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            fake.thread.join()


if __name__ == "__main__":
    main()
