"""A small fake of the Anthropic and OpenAI HTTP APIs on 127.0.0.1, for the real SDK clients.

Tests queue scripted responses (status, JSON body, headers, delay) per endpoint and read back what
the clients sent. Error responses carry ``retry-after-ms: 10`` so the SDKs' retries stay fast. A
request with nothing queued gets a 599 with ``x-should-retry: false`` and is recorded as unexpected,
which the ``fake_llm`` fixture turns into a test failure.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from http_fake import HttpFake

MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"
FAST_RETRY = {"retry-after-ms": "10"}


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeLLM(HttpFake):
    """The server, its queues and its log of received requests."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[Scripted]] = {MESSAGES: deque(), CHAT: deque()}
        self.received: list[Received] = []
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        super().__init__(_handler(self), poll_interval=0.02)

    @property
    def anthropic_base_url(self) -> str:
        return self.root  # the Anthropic SDK adds /v1 itself

    @property
    def openai_base_url(self) -> str:
        return f"{self.root}/v1"

    # ---- scripting -------------------------------------------------------------------------------

    def queue(self, path: str, status: int = 200, body: Any = None, **kw: Any) -> None:
        with self.lock:
            self.queues[path].append(Scripted(status, body, **kw))

    def anthropic_answer(self, answer: Any, *, input_tokens: int = 800, output_tokens: int = 120) -> None:
        """A forced tool call carrying ``answer`` as its input."""
        self.queue(MESSAGES, body=anthropic_tool_body(answer, input_tokens, output_tokens))

    def openai_answer(self, content: str, *, prompt_tokens: int = 900, completion_tokens: int = 150) -> None:
        self.queue(CHAT, body=openai_body(content, prompt_tokens, completion_tokens))

    def error(self, path: str, status: int, message: str = "scripted failure", **kw: Any) -> None:
        kind = {429: "rate_limit_error", 401: "authentication_error", 400: "invalid_request_error"}
        etype = kind.get(status, "api_error")
        if path == MESSAGES:
            body: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
        self.queue(path, status, body, headers={**FAST_RETRY, **kw.pop("headers", {})}, **kw)

    # ---- inspection ------------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]

    def _next(self, path: str) -> Scripted | None:
        with self.lock:
            queue = self.queues.get(path)
            return queue.popleft() if queue else None


def anthropic_tool_body(answer: Any, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_01FAKE",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_01FAKE", "name": "submit_verdict", "input": answer}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def openai_body(content: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-FAKE",
        "object": "chat.completion",
        "created": 1741770000,
        "model": "gpt-4.1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?", 1)[0]
            with fake.lock:
                fake.received.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
            scripted = fake._next(path)
            if scripted is None:
                with fake.lock:
                    fake.unexpected.append(path)
                scripted = Scripted(599, {"error": {"message": f"nothing queued for {path}"}})
                scripted.headers = {"x-should-retry": "false"}
            if scripted.delay_s:
                time.sleep(scripted.delay_s)
            payload = json.dumps(scripted.body).encode()
            try:
                self.send_response(scripted.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in scripted.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung API endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.connections: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def accepted(self) -> int:
        return len(self.connections)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)  # held open, never read or answered

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        for conn in [*self.connections, self.sock]:
            conn.close()


@pytest.fixture(name="silent_server")
def silent_server_fixture() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture(name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeLLM]:
    """A running fake API; fails the test if a client sent a request nothing was queued for."""
    with FakeLLM() as server:
        yield server
    assert not server.unexpected, f"requests with no scripted response: {server.unexpected}"
