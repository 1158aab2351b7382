"""An OpenAI-compatible completions server with token streaming.

Endpoints:

- ``GET /health``: 200 once the engine is ready.
- ``GET /v1/models``: the served model.
- ``POST /v1/completions``: ``{"prompt": str | [int], "max_tokens": int, "stream": bool,
  "ignore_eos": bool, "logprobs": int, "temperature": float}``.
  With ``"stream": true`` the reply is a server-sent event stream with one chunk per token, closed by
  ``data: [DONE]``. Decoding is greedy whatever the temperature. ``"logprobs": k`` adds OpenAI's
  ``logprobs`` object to a non-streamed reply: each token, its logprob and the ``k`` most likely tokens.

Run with ``python -m minillm.entrypoints.api_server --port 8000``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from minillm.engine import EngineConfig, LLMEngine, RequestMetrics, SamplingParams, TokenOutput

MODEL_NAME = "minillm-toy"


class CompletionHandler(BaseHTTPRequestHandler):
    """Serves one HTTP connection; the response to a completion ends the connection."""

    server: MiniLLMServer
    server_version = "minillm"

    def setup(self) -> None:
        super().setup()
        # Streamed chunks are tiny; without this, Nagle's algorithm would hold them back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send_json(HTTPStatus.OK, {})
        elif self.path == "/v1/models":
            self._send_json(
                HTTPStatus.OK, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]}
            )
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/v1/completions":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            prompt = body["prompt"]
            params = SamplingParams(
                max_tokens=int(body.get("max_tokens", 16)),
                ignore_eos=bool(body.get("ignore_eos", False)),
                logprobs=int(body.get("logprobs") or 0),
            )
            if not isinstance(prompt, str | list):
                raise TypeError("prompt must be a string or a list of token ids")
        except (ValueError, KeyError, TypeError) as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {exc}"})
            return

        request_id = f"cmpl-{next(self.server.request_counter)}"
        metrics = RequestMetrics()
        try:
            outputs = self.server.engine.generate(prompt, params, metrics)
            first = next(outputs, None)
        except ValueError as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        if body.get("stream", False):
            self._stream(request_id, first, outputs)
        else:
            generated = list(itertools.chain((first,) if first else (), outputs))
            text = "".join(out.text for out in generated)
            finish = generated[-1].finish_reason if generated else "length"
            reply = self._completion(request_id, text, finish, metrics)
            if params.logprobs:
                reply["choices"][0]["logprobs"] = self._logprobs(generated)
            self._send_json(HTTPStatus.OK, reply)

    def _logprobs(self, generated: list[TokenOutput]) -> dict:
        """OpenAI's completions ``logprobs`` object: tokens, their logprobs, the top tokens per position."""
        name = self.server.engine.tokenizer.id_to_word
        tokens, logprobs, top, offsets, offset = [], [], [], [], 0
        for out in generated:
            tokens.append(out.text or name[out.token_id])
            logprobs.append(out.top[0][1] if out.top else 0.0)
            top.append({(self._token_text(t) or name[t]): lp for t, lp in out.top})
            offsets.append(offset)
            offset += len(out.text)
        return {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": top, "text_offset": offsets}

    def _token_text(self, token_id: int) -> str:
        return self.server.engine.tokenizer.token_text(token_id)

    def _stream(self, request_id: str, first: TokenOutput | None, outputs: Iterator[TokenOutput]) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for out in itertools.chain((first,) if first else (), outputs):
            chunk = self._completion(request_id, out.text, out.finish_reason, None)
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

    @staticmethod
    def _completion(
        request_id: str, text: str, finish_reason: str | None, metrics: RequestMetrics | None
    ) -> dict:
        reply: dict = {
            "id": request_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": MODEL_NAME,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        }
        if metrics is not None:
            reply["usage"] = {
                "prompt_tokens": metrics.num_prompt_tokens,
                "completion_tokens": metrics.num_output_tokens,
                "total_tokens": metrics.num_prompt_tokens + metrics.num_output_tokens,
                "prompt_tokens_details": {"cached_tokens": metrics.num_cached_tokens},
            }
        return reply

    def _send_json(self, status: HTTPStatus, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class MiniLLMServer(ThreadingHTTPServer):
    """A threading HTTP server that owns the engine."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: LLMEngine, log_requests: bool = False) -> None:
        self.engine = engine
        self.log_requests = log_requests
        self.request_counter = itertools.count()
        super().__init__(address, CompletionHandler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--block-size", type=int, default=EngineConfig.block_size)
    parser.add_argument("--num-gpu-blocks", type=int, default=EngineConfig.num_gpu_blocks)
    parser.add_argument("--max-model-len", type=int, default=EngineConfig.max_model_len)
    parser.add_argument("--no-enable-prefix-caching", dest="enable_prefix_caching", action="store_false")
    parser.add_argument("--seed", type=int, default=EngineConfig.seed)
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)

    config = EngineConfig(
        block_size=args.block_size,
        num_gpu_blocks=args.num_gpu_blocks,
        max_model_len=args.max_model_len,
        enable_prefix_caching=args.enable_prefix_caching,
        seed=args.seed,
    )
    server = MiniLLMServer((args.host, args.port), LLMEngine(config), args.log_requests)
    print(f"minillm: serving {MODEL_NAME} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
