"""A scripted fake Anthropic Messages API on 127.0.0.1 that drives the real Claude Code CLI.

Each reply is chosen from the conversation in the request (how many assistant turns it already
holds), never from a request counter, so the CLI's retries and its non-streaming fallback stay
deterministic. Replies are streamed (SSE) or, for ``"stream": false``, one Messages object; the
``?beta=true`` query is ignored. Scenarios:

- ``fix``: finds the smoke task the prompt is about (``smoke_fixes.fix_for``) and the working copy
  (``workdir_in``), then for each file of the task's fix calls ``Read`` and ``Edit`` (the whole old
  content replaced by the whole new content, absolute path), then ends its turn with a short text;
- ``error500``: every request gets HTTP 500;
- ``loop``: calls a harmless ``Bash`` command forever;
- ``daemon``: its first ``Bash`` call starts a background process in its own session
  (``setsid ... &``, see :func:`daemon_command`), then it loops like ``loop``.

Every successful reply reports known usage figures (they differ per turn); the server sums them
(``totals``) so a test can compare what the CLI recorded with what it was sent.

Run it by hand (``python tests/fake_anthropic_agent.py --scenario fix``): it prints
``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`` and serves until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from http_fake import HttpFake
from smoke_fixes import fix_for, workdir_in

SCENARIOS = ("fix", "error500", "refuse_key", "loop", "daemon")
LOOP_COMMAND = "echo looping"
ERROR_500 = {"type": "error", "error": {"type": "api_error", "message": "Internal server error (fake)"}}
ERROR_401 = {
    "type": "error",
    "error": {"type": "authentication_error", "message": "invalid x-api-key (fake)"},
}


def daemon_command(python: str, flag: Path, marker: str) -> str:
    """A shell command that starts a daemon in its own session: it writes ``flag``, then sleeps 10
    minutes with ``marker`` on its command line (for counting processes)."""
    code = "import sys, time; open(sys.argv[1], 'w').write('started'); time.sleep(600)"
    return f"setsid {shlex.join([python, '-c', code, str(flag), marker])} > /dev/null 2>&1 &"


@dataclass
class Usage:
    """What one reply reports."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int

    def wire(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


def usage_for(turn: int) -> Usage:
    """Known, distinct figures per turn (``turn`` = assistant messages already in the conversation)."""
    return Usage(
        input_tokens=1200 + 37 * turn,
        output_tokens=40 + 3 * turn,
        cache_read_input_tokens=800 + 11 * turn,
        cache_creation_input_tokens=150 + 5 * turn,
    )


@dataclass
class Totals:
    """Sums over every successful reply."""

    replies: int = 0
    input_tokens: int = 0  # uncached input, as the API reports it
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def add(self, usage: Usage) -> None:
        self.replies += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_input_tokens += usage.cache_read_input_tokens
        self.cache_creation_input_tokens += usage.cache_creation_input_tokens

    @property
    def all_input(self) -> int:
        """Every input token: uncached, written to the cache and read from it."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """One assistant turn: content blocks and why it stops."""

    content: list[dict[str, Any]]
    stop_reason: str


@dataclass
class FakeAnthropicAgent(HttpFake):
    """The server: its scenario, what it received and the usage it reported."""

    scenario: str
    daemon: str | None = None  # the daemon scenario's first command (daemon_command)
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    tool_errors: list[str] = field(default_factory=list)  # error tool results the CLI sent back
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.scenario == "daemon" and not self.daemon:
            raise ValueError("the daemon scenario needs its command (daemon_command)")
        super().__init__(_handler(self), host=self.host, port=self.port)

    @property
    def base_url(self) -> str:
        return self.root

    def messages(self) -> list[Received]:
        """The Messages requests received (the conversation turns, retries included)."""
        with self.lock:
            return [r for r in self.received if r.path == "/v1/messages"]

    def models(self) -> set[str]:
        return {str(r.body.get("model")) for r in self.messages() if isinstance(r.body, dict)}

    # ---- the script ------------------------------------------------------------------------------

    def reply(self, body: dict[str, Any]) -> Reply:
        """The next assistant turn for this conversation."""
        messages = body.get("messages") or []
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        self._note_tool_errors(messages)
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if not {"Read", "Edit", "Bash"} <= tools:  # not the agent's conversation (a side request)
            return _text("OK.")
        if self.scenario == "fix":
            return self._fix(json.dumps(messages), turn)
        if self.scenario == "daemon" and turn == 0:
            return _tool("Bash", {"command": self.daemon, "description": "Start a helper"})
        return _tool("Bash", {"command": LOOP_COMMAND, "description": "Print a word"})

    def _fix(self, conversation: str, turn: int) -> Reply:
        fix, workdir = fix_for(conversation), workdir_in(conversation)
        if fix is None or workdir is None:
            return _text("I cannot tell which task this is.")
        if turn >= 2 * len(fix.files):
            return _text(f"I applied the fix for {fix.task_id}.")
        change = fix.files[turn // 2]
        path = str(Path(workdir) / change.path)
        if turn % 2 == 0:
            return Reply(
                [
                    {"type": "text", "text": f"Let me read {change.path}."},
                    _tool_block("Read", {"file_path": path}),
                ],
                "tool_use",
            )
        edit = {"file_path": path, "old_string": change.old, "new_string": change.new, "replace_all": False}
        return _tool("Edit", edit)

    def _note_tool_errors(self, messages: list[dict[str, Any]]) -> None:
        if not messages or not isinstance(messages[-1].get("content"), list):
            return
        for block in messages[-1]["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("is_error"):
                with self.lock:
                    self.tool_errors.append(json.dumps(block.get("content"))[:500])


def _tool_block(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": tool_input}


def _tool(name: str, tool_input: dict[str, Any]) -> Reply:
    return Reply([_tool_block(name, tool_input)], "tool_use")


def _text(text: str) -> Reply:
    return Reply([{"type": "text", "text": text}], "end_turn")


def message_object(reply: Reply, model: str, usage: Usage) -> dict[str, Any]:
    """The reply as one non-streamed Messages object."""
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage.wire(),
    }


def sse_events(reply: Reply, model: str, usage: Usage) -> Iterator[tuple[str, dict[str, Any]]]:
    """The reply as the Messages API streams it."""
    start = message_object(Reply([], reply.stop_reason), model, usage)
    start.update(stop_reason=None, usage={**usage.wire(), "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(reply.content):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                },
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": usage.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _handler(fake: FakeAnthropicAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?", 1)[0]
            with fake.lock:
                fake.received.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
            if not isinstance(body, dict):
                self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "?"}})
            elif path.endswith("/count_tokens"):
                self._json(200, {"input_tokens": 1000})
            elif path != "/v1/messages":
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            elif fake.scenario == "error500":
                self._json(500, ERROR_500)
            elif fake.scenario == "refuse_key":
                self._json(401, ERROR_401)
            else:
                self._answer(body)

        def do_GET(self) -> None:
            self._json(200, {})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def _answer(self, body: dict[str, Any]) -> None:
            reply = fake.reply(body)
            turn = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
            usage, model = usage_for(turn), str(body.get("model") or "claude-sonnet-4-5")
            try:
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("cache-control", "no-cache")
                    self.send_header("connection", "close")
                    self.end_headers()
                    for name, data in sse_events(reply, model, usage):
                        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._json(200, message_object(reply, model, usage))
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away: it got nothing, nothing is counted
            with fake.lock:
                fake.totals.add(usage)

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="fix")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--daemon-marker", default="isobench-fake-daemon", help="daemon scenario: marker")
    args = parser.parse_args(argv)
    flag = Path(tempfile.gettempdir()) / f"{args.daemon_marker}.started"
    daemon = daemon_command(sys.executable, flag, args.daemon_marker) if args.scenario == "daemon" else None
    with FakeAnthropicAgent(args.scenario, daemon=daemon, port=args.port) as fake:
        print(f"ANTHROPIC_BASE_URL={fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
