"""The model gateway, driven by the real Anthropic and OpenAI SDKs against a fake upstream on 127.0.0.1:
relaying, token accounting, caps, revocation, faults and streaming without buffering."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fake_upstream import USAGE, FakeUpstream
from pytest_isobench.gateway import CALLS_FILE, Ledger, account, upstreams_from_env
from pytest_isobench.gateway.server import Gateway, GatewayError
from pytest_isobench.gateway.usage import UsageMeter
from pytest_isobench.pricing import DEFAULT_PRICES, cost_usd

KEY = "sk-canary-gateway-0123456789abcdef"
# A model name of our own, priced here: the SDK warns about (and the suite fails on) retired model ids.
CLAUDE = "house-claude"
PRICES = {CLAUDE: (3.0, 15.0, 0.3)}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(cached=4) as fake:
        yield fake


def start_gateway(upstream: FakeUpstream, **kw: Any) -> Gateway:
    env = {
        "ANTHROPIC_BASE_URL": upstream.url,
        "ANTHROPIC_API_KEY": KEY,
        "OPENAI_BASE_URL": upstream.openai_url,
        "OPENAI_API_KEY": KEY,
    }
    return Gateway(upstreams_from_env(env), prices=PRICES, **kw).start()


@pytest.fixture
def gateway(upstream: FakeUpstream) -> Iterator[Gateway]:
    gw = start_gateway(upstream)
    yield gw
    gw.stop()


def calls(ledger: Ledger) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.log_path.read_text().splitlines()]


def clients(gateway: Gateway, token: str) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    return (
        anthropic.Anthropic(base_url=f"{gateway.url}/anthropic", api_key=token, max_retries=0),
        openai.OpenAI(base_url=f"{gateway.url}/openai", api_key=token, max_retries=0),
    )


def test_each_wire_api_is_relayed_with_the_real_key_and_counted(
    gateway: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    ledger = gateway.open("t1", tmp_path)
    claude, gpt = clients(gateway, ledger.token)
    message = [{"role": "user", "content": "hi"}]
    assert claude.messages.create(model=CLAUDE, max_tokens=5, messages=message).content
    with claude.messages.stream(model=CLAUDE, max_tokens=5, messages=message) as stream:
        assert stream.get_final_text() == "ok"
    assert gpt.responses.create(model="gpt-5", input="hi").output_text == "ok"
    streamed = list(gpt.responses.create(model="gpt-5", input="hi", stream=True))
    assert streamed[-1].type == "response.completed"
    assert gpt.chat.completions.create(model="gpt-4o", messages=message).choices[0].message.content == "ok"
    chunks = list(gpt.chat.completions.create(model="gpt-4o", messages=message, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"
    # the upstream saw the real key, never the token; the gateway asked for the usage chunk
    assert len(upstream.requests) == 6
    for request in upstream.requests:
        auth = request.headers.get("x-api-key") or request.headers.get("Authorization")
        assert auth in (KEY, f"Bearer {KEY}") and ledger.token not in json.dumps(request.headers)
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    logged = calls(ledger)
    assert [(c["api"], c["stream"], c["status"]) for c in logged] == [
        ("messages", False, 200),
        ("messages", True, 200),
        ("responses", False, 200),
        ("responses", True, 200),
        ("chat_completions", False, 200),
        ("chat_completions", True, 200),
    ]
    figures = {"input": USAGE["input"], "output": USAGE["output"], "cached": 4}
    assert all(c["tokens"] == figures for c in logged), logged
    for c in logged:
        assert (
            c["cost_usd"] == cost_usd(c["model"], 11, 7, 4, table={**DEFAULT_PRICES, **PRICES})
            and c["latency_s"] >= c["first_byte_s"] >= 0
        )
    summary = ledger.summary()
    assert summary["tokens"] == {"input": 66, "output": 42, "cached": 24} and summary["calls"] == 6
    assert summary["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in logged), abs=1e-6)
    text = ledger.log_path.read_text()
    assert KEY not in text and ledger.token not in text and "authorization" not in text.lower()


def test_an_unknown_or_revoked_token_gets_401_and_spends_nothing(
    gateway: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    ledger = gateway.open("t2", tmp_path)
    claude, _ = clients(gateway, "isobench-gw-" + "0" * 48)
    with pytest.raises(anthropic.AuthenticationError):
        claude.messages.create(model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    _, gpt = clients(gateway, KEY)  # a provider key is no token either
    with pytest.raises(openai.AuthenticationError):
        gpt.responses.create(model="gpt-5", input="hi")
    _, gpt = clients(gateway, ledger.token)
    gpt.responses.create(model="gpt-5", input="hi")
    ledger.revoke()
    with pytest.raises(openai.AuthenticationError, match="unknown or revoked token"):
        gpt.responses.create(model="gpt-5", input="hi")
    assert len(upstream.requests) == 1 and ledger.summary()["calls"] == 1 and ledger.late_calls == 1


def test_malformed_requests_and_other_endpoints_are_refused_and_logged(
    gateway: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    ledger = gateway.open("t3", tmp_path)
    auth = {"Authorization": f"Bearer {ledger.token}"}
    with httpx.Client(base_url=gateway.url, headers=auth, timeout=30) as http:
        bad = http.post("/openai/responses", content=b"{not json")
        assert bad.status_code == 400 and "JSON object with a model" in bad.json()["error"]["message"]
        no_model = http.post("/openai/chat/completions", json={"messages": []})
        assert no_model.status_code == 400
        files = http.post("/openai/files", json={"model": "x"})  # the key is only for model calls
        assert files.status_code == 404 and "not a model call" in files.json()["error"]["message"]
        nobody = http.post("/mistral/v1/chat", json={"model": "x"})
        assert nobody.status_code == 404
        anthropic_shape = http.post(
            "/anthropic/v1/messages", content=b"[]", headers={"x-api-key": ledger.token}
        )
        assert anthropic_shape.json()["type"] == "error"  # the wire API's own error shape
    assert upstream.requests == []
    assert [(c["status"], c["refused"]) for c in calls(ledger)] == [
        (400, "malformed"),
        (400, "malformed"),
        (404, "path"),
        (404, "path"),
        (400, "malformed"),
    ]


def test_token_cap_refuses_the_next_call_with_a_budget_stop(upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(upstream)
    try:
        ledger = gateway.open("t4", tmp_path, max_tokens=30)
        claude, _ = clients(gateway, ledger.token)
        message = [{"role": "user", "content": "x"}]
        claude.messages.create(model=CLAUDE, max_tokens=5, messages=message)  # 18 tokens
        claude.messages.create(model=CLAUDE, max_tokens=5, messages=message)  # 36: over
        with pytest.raises(anthropic.BadRequestError, match="token cap of 30 tokens is reached"):
            claude.messages.create(model=CLAUDE, max_tokens=5, messages=message)
        assert len(upstream.requests) == 2 and ledger.stop == "budget"
        assert calls(ledger)[-1]["refused"] == "budget" and ledger.summary()["refused"] == {"budget": 1}
        info = {"stop_reason": "api_error", "error": "API Error: 400", "tokens": None}
        account(info, ledger)
        assert info["stop_reason"] == "budget" and "error" not in info and info["cost_source"] == "gateway"
        # dollars: the table's price holds the cap; a model without a price cannot be capped in dollars
        spender = gateway.open("t5", tmp_path / "t5", budget_usd=0.0001)
        _, gpt = clients(gateway, spender.token)
        gpt.responses.create(model="gpt-5", input="x")
        assert spender.cost > 0
        cheap = gateway.open("t6", tmp_path / "t6", budget_usd=0.0000001)
        _, gpt = clients(gateway, cheap.token)
        gpt.responses.create(model="gpt-5", input="x")
        with pytest.raises(openai.BadRequestError, match="budget of"):
            gpt.responses.create(model="gpt-5", input="x")
        unpriced = gateway.open("t7", tmp_path / "t7", budget_usd=5)
        _, gpt = clients(gateway, unpriced.token)
        with pytest.raises(
            openai.BadRequestError, match=r"no price for model 'house-model'.*--isobench-prices"
        ):
            gpt.responses.create(model="house-model", input="x")
    finally:
        gateway.stop()


def test_upstream_faults_reach_the_agent_as_errors_not_hangs(tmp_path: Path) -> None:
    with FakeUpstream("error500") as broken:
        gateway = start_gateway(broken)
        try:
            ledger = gateway.open("f1", tmp_path / "f1")
            _, gpt = clients(gateway, ledger.token)
            with pytest.raises(openai.InternalServerError, match="upstream broke"):
                gpt.responses.create(model="gpt-5", input="x")
            assert calls(ledger)[0]["status"] == 500 and "upstream broke" in calls(ledger)[0]["error"]
        finally:
            gateway.stop()
    with FakeUpstream("hang") as hung:
        gateway = start_gateway(hung, read_timeout_s=1.0)
        try:
            ledger = gateway.open("f2", tmp_path / "f2")
            claude, _ = clients(gateway, ledger.token)
            with pytest.raises(anthropic.APIStatusError) as caught:
                claude.messages.create(
                    model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}]
                )
            assert caught.value.status_code == 504 and calls(ledger)[0]["status"] == 504
            hung.release()
        finally:
            gateway.stop()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    gateway = Gateway(
        upstreams_from_env({"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": KEY})
    )
    gateway.start()
    try:
        ledger = gateway.open("f3", tmp_path / "f3")
        _, gpt = clients(gateway, ledger.token)
        with pytest.raises(openai.APIStatusError) as refused:
            gpt.responses.create(model="gpt-5", input="x")
        assert refused.value.status_code == 502 and KEY not in str(refused.value)
    finally:
        gateway.stop()


def test_a_stream_passes_through_as_it_arrives(tmp_path: Path) -> None:
    """The first event reaches the client while the upstream still holds the rest back."""
    with FakeUpstream(gate=True) as slow:
        gateway = start_gateway(slow)
        try:
            ledger = gateway.open("s1", tmp_path)
            body = {"model": CLAUDE, "max_tokens": 5, "stream": True, "messages": []}
            seen_before_release: list[bool] = []
            with (
                httpx.Client(timeout=60) as http,
                http.stream(
                    "POST",
                    f"{gateway.url}/anthropic/v1/messages",
                    json=body,
                    headers={"x-api-key": ledger.token},
                ) as answer,
            ):
                chunks = answer.iter_raw()
                first = next(chunks)
                seen_before_release.append(not slow._released.is_set())
                slow.release()
                rest = b"".join(chunks)
            assert b"message_start" in first and seen_before_release == [True]
            assert b"message_stop" in rest
            assert calls(ledger)[0]["tokens"] == {"input": 11, "output": 7, "cached": 0}
        finally:
            gateway.stop()


def test_a_stopped_gateway_refuses_new_attempts_and_its_ledgers_know(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(upstream)
    ledger = gateway.open("d1", tmp_path)
    assert ledger.gateway_alive()
    gateway.stop()
    assert not ledger.gateway_alive() and not gateway.socket_path.exists()
    with pytest.raises(GatewayError, match="not running"):
        gateway.open("d2", tmp_path)


@pytest.mark.parametrize(
    ("api", "stream", "raw", "expected"),
    [
        # a Messages stream: input side at the start, the running output count in the delta
        ("messages", True, b'event: message_start\ndata: {"type":"message_start","message":{"model":"m",'
         b'"usage":{"input_tokens":3,"cache_creation_input_tokens":2,"cache_read_input_tokens":5,'
         b'"output_tokens":1}}}\n\nevent: message_delta\ndata: {"type":"message_delta","usage":'
         b'{"output_tokens":9}}\n\n', (10, 9, 5)),
        # events split across reads, CRLF separators, a last event without its blank line
        ("responses", True, b'data: {"type":"response.created"}\r\n\r\ndata: {"type":"response.completed",'
         b'"response":{"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":8},'
         b'"output_tokens":4}}}', (20, 4, 8)),
        ("chat_completions", True, b'data: {"choices":[]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":6,'
         b'"completion_tokens":2}}\n\ndata: [DONE]\n\n', (6, 2, 0)),
        ("chat_completions", False, b'{"usage":{"prompt_tokens":6,"completion_tokens":2,'
         b'"prompt_tokens_details":{"cached_tokens":1}}}', (6, 2, 1)),
        ("responses", False, b'{"error": "no usage here"}', None),
        ("messages", True, b"data: [DONE]\n\n", None),
    ],
)  # fmt: skip
def test_usage_is_read_from_every_shape(api: str, stream: bool, raw: bytes, expected: Any) -> None:
    meter = UsageMeter(api, streamed=stream)
    for start in range(0, len(raw), 7):  # in small pieces, as a network delivers them
        meter.feed(raw[start : start + 7])
    usage = meter.result()
    assert (None if usage is None else (usage.input, usage.output, usage.cached)) == expected


def test_it_listens_on_loopback_and_a_private_socket_only(gateway: Gateway) -> None:
    assert gateway._runner is not None
    tcp = [a for a in gateway._runner.addresses if isinstance(a, tuple)]
    assert [a[0] for a in tcp] == ["127.0.0.1"]
    assert [a for a in gateway._runner.addresses if not isinstance(a, tuple)] == [str(gateway.socket_path)]
    assert gateway.socket_path.stat().st_mode & 0o777 == 0o600
    assert gateway.socket_path.parent.stat().st_mode & 0o077 == 0  # mkdtemp: the owner's alone


def test_calls_file_name_is_what_the_outcome_points_at(gateway: Gateway, tmp_path: Path) -> None:
    ledger = gateway.open("n1", tmp_path)
    assert ledger.log_path == tmp_path / CALLS_FILE and ledger.summary()["log"] == CALLS_FILE
