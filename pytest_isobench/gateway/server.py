"""The model gateway: a reverse proxy between agents and their model APIs, owned by the harness.

One gateway per pytest process (:func:`shared_gateway`), an aiohttp server on its own event-loop thread,
listening on ``127.0.0.1`` (the local backend's agents) and on a unix socket (the docker backend's
agents reach it through a relay inside their container, which has no network of its own).

Each attempt gets a :class:`Ledger` with a random token (``isobench-gw-...``, not a provider key). A
request is relayed only when it carries a live token, names a provider the gateway knows
(``/<provider>/...``) and calls a model endpoint (``upstreams.ENDPOINTS``); the gateway swaps the token
for the real key, forwards the request, and passes the answer back as it arrives (server-sent events
are not buffered). Every call is written to the attempt's ``model_calls.jsonl`` (time, API, model,
stream, status, latency, first-byte time, tokens, cost, error; never a header or a key), and the
attempt's tokens and cost are summed from it. Past the attempt's spending or token cap the gateway
answers 400 with the wire API's error shape and the attempt's stop reason becomes ``budget``; once the
attempt ends its token is revoked (401), so a process it left behind cannot keep spending.

Faults: an upstream that refuses the connection gives 502, one that stops answering 504 (or a cut
stream once the answer started), an upstream error is passed back as it came (its text redacted);
a request that is not a JSON object with a ``model`` gets 400 and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, ServerTimeoutError, TCPConnector, web

from ..pricing import PriceTable, cost_usd, lookup_price, price_table
from ..sandbox.base import SandboxError
from ..secrets import redact
from .ledger import CALLS_FILE, TOKEN_PREFIX, Ledger
from .upstreams import PROVIDERS, Upstream, endpoint, upstreams_from_env
from .usage import MAX_BODY_BYTES, UsageMeter

log = logging.getLogger("pytest_isobench")
SOCKET_NAME = "gateway.sock"
CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 300.0  # the default of --isobench-gateway-timeout
ERROR_TEXT_LIMIT = 500
# Request headers never forwarded (hop-by-hop, the agent's credentials, what aiohttp sets itself).
DROP_REQUEST = {
    "host",
    "authorization",
    "x-api-key",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "accept-encoding",
    "cookie",
}
DROP_RESPONSE = {
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "set-cookie",
    "trailer",
    "upgrade",
}


class GatewayError(SandboxError):
    """The gateway could not start or went away (infrastructure: the task errors)."""


class Gateway:
    """The harness's model gateway (see the module's docstring)."""

    def __init__(
        self,
        upstreams: Mapping[str, Upstream] | None = None,
        *,
        prices: PriceTable | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.upstreams = dict(upstreams if upstreams is not None else upstreams_from_env())
        self.prices = price_table(prices)
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.port = 0
        self.socket_dir: Path | None = None
        self._ledgers: dict[str, Ledger] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._stopped = False

    # -- life cycle (any thread) --------------------------------------------------------------

    def start(self) -> Gateway:
        if self._thread is not None:
            return self
        self.socket_dir = Path(tempfile.mkdtemp(prefix="isobench-gw-"))  # short: a socket path is <108 bytes
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="isobench-gateway", daemon=True)
        self._thread.start()
        try:
            self._call(self._astart())
        except Exception as exc:
            self.stop()
            raise GatewayError(f"the model gateway could not start: {exc}") from exc
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    @property
    def url(self) -> str:
        """The gateway's address on this host (loopback)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        if self.socket_dir is None:
            raise GatewayError("the model gateway is not started")
        return self.socket_dir / SOCKET_NAME

    def stop(self) -> None:
        """Stop serving (every token then fails); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._astop(), timeout_s=15)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=15)
        if loop is not None and not loop.is_running():
            loop.close()
        if self.socket_dir is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink(missing_ok=True)
                self.socket_dir.rmdir()

    def open(
        self,
        label: str,
        log_dir: Path,
        *,
        budget_usd: float | None = None,
        max_tokens: int | None = None,
    ) -> Ledger:
        """A new attempt's ledger (its token is ``ledger.token``); calls are logged in
        ``log_dir/model_calls.jsonl``."""
        if not self.alive:
            raise GatewayError("the model gateway is not running")
        ledger = Ledger(
            label,
            log_dir / CALLS_FILE,
            budget_usd=budget_usd,
            max_tokens=max_tokens,
            alive=lambda: self.alive,
        )
        with self._lock:
            self._ledgers[ledger.token] = ledger
        return ledger

    def _call(self, coro: Any, timeout_s: float = 30) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # -- inside the loop ----------------------------------------------------------------------

    async def _astart(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{provider}/{rest:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))
        unix = web.UnixSite(self._runner, str(self.socket_path))
        await unix.start()
        os.chmod(self.socket_path, 0o600)
        self._session = ClientSession(
            connector=TCPConnector(limit=0),
            timeout=ClientTimeout(total=None, connect=self.connect_timeout_s, sock_read=self.read_timeout_s),
            auto_decompress=True,
            trust_env=True,
        )

    async def _astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        name, rest = request.match_info["provider"], request.match_info["rest"]
        provider = PROVIDERS.get(name)
        wire = provider.wire if provider else "openai"
        ledger = self._ledger(request)
        if ledger is None:
            return _error(wire, 401, "authentication_error", "isobench gateway: unknown or revoked token")
        entry: dict[str, Any] = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "provider": name,
            "method": request.method,
            "path": rest,
        }

        def refuse(status: int, kind: str, message: str, why: str) -> web.Response:
            entry.update(status=status, refused=why, error=message, latency_s=_since(started))
            ledger.record(entry)
            return _error(wire, status, kind, f"isobench gateway: {message}")

        upstream = self.upstreams.get(name)
        if provider is None or upstream is None:
            return refuse(
                404, "not_found_error", f"no provider {name!r} (known: {', '.join(PROVIDERS)})", "path"
            )
        api = endpoint(wire, request.method, rest)
        entry["api"] = api
        if api is None:
            return refuse(404, "not_found_error", f"{request.method} /{rest} is not a model call", "path")
        body = await request.read()
        payload: dict[str, Any] | None = None
        if request.method == "POST":
            with contextlib.suppress(ValueError):
                parsed = json.loads(body) if body else None
                payload = parsed if isinstance(parsed, dict) else None
            if payload is None or not isinstance(payload.get("model"), str) or not payload["model"]:
                return refuse(
                    400, "invalid_request_error", "the body must be a JSON object with a model", "malformed"
                )
            entry["model"] = payload["model"]
            entry["stream"] = bool(payload.get("stream"))
        if (why := ledger.over_cap()) is not None and api not in ("count_tokens", "models"):
            ledger.stop = "budget"
            return refuse(400, "invalid_request_error", f"this attempt is stopped: {why}", "budget")
        model = entry.get("model")
        if ledger.budget_usd is not None and model and lookup_price(model, self.prices) is None:
            message = (
                f"no price for model {model!r}, so a dollar budget cannot hold;"
                " give one with --isobench-prices"
            )
            return refuse(400, "invalid_request_error", message, "unpriced")
        if api == "chat_completions" and payload is not None and payload.get("stream"):
            options = payload.get("stream_options")
            options = options if isinstance(options, dict) else {}
            if not options.get("include_usage"):  # the usage chunk: how the gateway counts the call
                payload["stream_options"] = {**options, "include_usage": True}
                body = json.dumps(payload).encode()
        return await self._relay(request, upstream, rest, body, api, entry, ledger, started)

    async def _relay(
        self,
        request: web.Request,
        upstream: Upstream,
        rest: str,
        body: bytes,
        api: str,
        entry: dict[str, Any],
        ledger: Ledger,
        started: float,
    ) -> web.StreamResponse:
        assert self._session is not None
        wire = upstream.provider.wire
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        headers["Accept-Encoding"] = "identity"
        if upstream.auth is not None:
            headers[upstream.auth[0]] = upstream.auth[1]
        url = upstream.url(rest)
        meter = UsageMeter(api, streamed=bool(entry.get("stream")))
        response: web.StreamResponse | None = None
        accounted = False
        try:
            async with self._session.request(
                request.method, url, params=request.query, data=body or None, headers=headers
            ) as answer:
                entry["status"] = answer.status
                entry["first_byte_s"] = _since(started)
                if answer.status >= 400:
                    text = (await answer.content.read(MAX_BODY_BYTES)).decode("utf-8", "replace")
                    entry["error"] = redact(text)[:ERROR_TEXT_LIMIT]
                    if answer.status in (401, 403):
                        ledger.note_fault(credentials_fault(upstream, answer.status))
                    response = web.Response(
                        status=answer.status,
                        body=redact(text).encode(),
                        headers=_answer_headers(answer.headers),
                    )
                    return response
                response = web.StreamResponse(status=answer.status, headers=_answer_headers(answer.headers))
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    meter.feed(chunk)
                    await response.write(chunk)
                # Counted before the agent sees the end of the answer: once it has the whole answer
                # (and may exit), its ledger already holds this call.
                accounted = self._account(entry, meter, started, ledger)
                await response.write_eof()
                return response
        except (ServerTimeoutError, TimeoutError) as exc:
            entry["error"] = f"upstream timed out: {type(exc).__name__}"
            entry.setdefault("status", 504)
            if response is None:
                return _error(wire, 504, "timeout_error", f"isobench gateway: {entry['error']}")
            raise
        except (ClientError, OSError) as exc:
            entry["error"] = redact(f"upstream failed: {type(exc).__name__}: {exc}")[:ERROR_TEXT_LIMIT]
            if response is None:
                entry.setdefault("status", 502)
                return _error(wire, 502, "api_error", f"isobench gateway: {entry['error']}")
            raise  # the answer had started: the agent sees a cut stream
        finally:
            if not accounted:
                self._account(entry, meter, started, ledger)

    def _account(self, entry: dict[str, Any], meter: UsageMeter, started: float, ledger: Ledger) -> bool:
        """Write the call to the attempt's ledger (its usage read from the answer); True."""
        entry["latency_s"] = _since(started)
        usage = meter.result()
        if usage is not None:
            model = meter.model or entry.get("model")
            entry["response_model"] = meter.model
            entry["tokens"] = usage.to_wire()
            entry["cost_usd"] = (
                None
                if not model
                else cost_usd(str(model), usage.input, usage.output, usage.cached, table=self.prices)
            )
        ledger.record(entry)
        return True

    def _ledger(self, request: web.Request) -> Ledger | None:
        token = request.headers.get("x-api-key", "")
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        with self._lock:
            ledger = self._ledgers.get(token) if token.startswith(TOKEN_PREFIX) else None
            if ledger is not None and ledger.revoked:
                ledger.late_calls += 1
                return None
        return ledger


def _answer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in DROP_RESPONSE}


def credentials_fault(upstream: Upstream, status: int) -> str:
    """What a refusal of the gateway's credentials means for the operator (never the key itself)."""
    provider = upstream.provider
    where = f"where the gateway runs (host {socket.gethostname()}"
    ray_hint = "; with the Ray executor, in the environment of each node's `ray start`)"
    if upstream.auth is None:
        names = " or ".join(provider.key_vars)
        return (
            f"the {provider.name} API refused an unauthenticated call (HTTP {status}): {names} is not set"
            f" {where}{ray_hint}"
        )
    return (
        f"the {provider.name} API refused the key the gateway holds (HTTP {status}): check"
        f" {' / '.join(provider.key_vars)} {where}{ray_hint}"
    )


def _error(wire: str, status: int, kind: str, message: str) -> web.Response:
    """An error in the shape the wire API's SDKs and CLIs parse."""
    if wire == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return web.json_response(body, status=status)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)


_shared: dict[tuple[Any, ...], Gateway] = {}
_shared_lock = threading.Lock()


def shared_gateway(prices: PriceTable | None = None, read_timeout_s: float = READ_TIMEOUT_S) -> Gateway:
    """This process's gateway for the upstreams this environment names, started on first use (a
    changed environment, price table or timeout, e.g. another model server, gets a gateway of its own).
    ``read_timeout_s``: how long it waits for an upstream's next bytes (``--isobench-gateway-timeout``)."""
    upstreams = upstreams_from_env()
    key = (*upstreams.values(), *sorted((prices or {}).items()), read_timeout_s)
    with _shared_lock:
        gateway = _shared.get(key)
        if gateway is None or not gateway.alive:
            gateway = Gateway(upstreams, prices=prices, read_timeout_s=read_timeout_s)
            gateway = _shared[key] = gateway.start()
        return gateway


def stop_shared_gateway() -> None:
    """Stop every gateway :func:`shared_gateway` started (at the end of the session)."""
    with _shared_lock:
        for gateway in _shared.values():
            gateway.stop()
        _shared.clear()
