"""A fake model provider behind the gateway: the three wire APIs, streamed or not, with known usage.

``mode``: ``ok`` answers, ``error500`` fails every request, ``hang`` never answers (until the server
stops). ``gate``: a streamed answer sends its first event, then waits for ``release()`` before the
rest, so a test can show the first byte reached the client while the upstream had not finished.
``requests`` keeps what arrived (path, headers, JSON body).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

USAGE = {"input": 11, "output": 7, "cached": 0}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeUpstream:
    def __init__(self, mode: str = "ok", *, gate: bool = False, cached: int = 0) -> None:
        self.mode = mode
        self.gate = gate
        self.cached = cached
        self.requests: list[Received] = []
        self.first_event_sent = threading.Event()
        self._released = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = "/" + request.match_info["path"]
        self.requests.append(Received(path, dict(request.headers), body))
        keyless = not (request.headers.get("Authorization") or request.headers.get("x-api-key"))
        if self.mode == "refuse_all" or (self.mode == "needs_key" and keyless):
            refusal = {"error": {"type": "authentication_error", "message": "missing API key (fake)"}}
            return web.json_response(refusal, status=401)
        if self.mode == "error500":
            failure = {"error": {"type": "api_error", "message": "upstream broke (fake)"}}
            return web.json_response(failure, status=500)
        if self.mode == "hang":
            await asyncio.get_running_loop().run_in_executor(None, self._released.wait, 120)
            return web.json_response({}, status=503)
        model = body.get("model", "?") if isinstance(body, dict) else "?"
        stream = isinstance(body, dict) and bool(body.get("stream"))
        events = self._events(path, model, body if isinstance(body, dict) else {})
        if events is None:
            return web.json_response({"error": {"message": f"no such path {path}"}}, status=404)
        if not stream:
            return web.json_response(events[-1][1] if path.endswith("messages") else self._final(path, model))
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await answer.prepare(request)
        for index, (name, data) in enumerate(events[:-1] if path.endswith("messages") else events):
            head = f"event: {name}\n" if name else ""
            await answer.write(f"{head}data: {json.dumps(data)}\n\n".encode())
            if index == 0:
                self.first_event_sent.set()
                if self.gate:
                    await asyncio.get_running_loop().run_in_executor(None, self._released.wait, 120)
        if path.endswith("chat/completions"):
            await answer.write(b"data: [DONE]\n\n")
        await answer.write_eof()
        return answer

    def _usage(self) -> dict[str, int]:
        return {**USAGE, "cached": self.cached}

    def _events(self, path: str, model: str, body: dict[str, Any]) -> list[tuple[str, Any]] | None:
        """The SSE events of an answer (for Messages, the last item is the non-streamed object)."""
        u = self._usage()
        if path.endswith("/v1/messages"):
            start = {
                "input_tokens": u["input"] - u["cached"],
                "cache_read_input_tokens": u["cached"],
                "output_tokens": 1,
            }
            message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": []}
            return [
                ("message_start", {"type": "message_start", "message": {**message, "usage": start}}),
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "ok"},
                    },
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": u["output"]},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
                (
                    "",
                    {
                        **message,
                        "content": [{"type": "text", "text": "ok"}],
                        "stop_reason": "end_turn",
                        "usage": {
                            "input_tokens": u["input"] - u["cached"],
                            "cache_read_input_tokens": u["cached"],
                            "output_tokens": u["output"],
                        },
                    },
                ),
            ]
        if path.endswith("/v1/responses"):
            return [
                ("response.created", {"type": "response.created", "response": {"id": "r1", "model": model}}),
                ("response.completed", {"type": "response.completed", "response": self._final(path, model)}),
            ]
        if path.endswith("/v1/chat/completions"):
            chunk = {"id": "c1", "object": "chat.completion.chunk", "model": model}
            events: list[tuple[str, Any]] = [
                ("", {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]}),
                ("", {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            ]
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(("", {**chunk, "choices": [], "usage": self._final(path, model)["usage"]}))
            return events
        return None

    def _final(self, path: str, model: str) -> dict[str, Any]:
        u = self._usage()
        if path.endswith("/v1/responses"):
            return {
                "id": "r1",
                "object": "response",
                "status": "completed",
                "model": model,
                "output": [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "ok"}],
                    }
                ],
                "usage": {
                    "input_tokens": u["input"],
                    "input_tokens_details": {"cached_tokens": u["cached"]},
                    "output_tokens": u["output"],
                },
            }
        return {
            "id": "c1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": u["input"],
                "prompt_tokens_details": {"cached_tokens": u["cached"]},
                "completion_tokens": u["output"],
                "total_tokens": u["input"] + u["output"],
            },
        }
