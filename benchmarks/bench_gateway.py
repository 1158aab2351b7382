"""What the model gateway adds to a model call: the same calls direct to a local fake upstream and
through the gateway, as a ratio of medians, plus the time to the first streamed byte both ways.

    python benchmarks/bench_gateway.py [--calls 200]

The upstream answers at once (no model), so the figures are the gateway's own cost per call, an upper
bound of its share of a real call (which takes seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_upstream import FakeUpstream
from pytest_isobench.gateway import upstreams_from_env
from pytest_isobench.gateway.server import Gateway

BODY = {"model": "gpt-5", "input": "hi"}


def timed_calls(
    client: httpx.Client, url: str, headers: dict[str, str], calls: int, stream: bool
) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        with client.stream("POST", url, json={**BODY, "stream": stream}, headers=headers) as answer:
            chunks = answer.iter_raw()
            next(chunks)  # the first byte
            times.append(time.perf_counter() - start)
            for _ in chunks:  # the rest
                pass
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with FakeUpstream() as upstream, tempfile.TemporaryDirectory() as logs, httpx.Client(timeout=60) as http:
        env = {"OPENAI_BASE_URL": upstream.openai_url, "OPENAI_API_KEY": "sk-bench"}
        gateway = Gateway(upstreams_from_env(env)).start()
        try:
            ledger = gateway.open("bench", Path(logs))
            for stream in (False, True):
                direct = timed_calls(
                    http,
                    f"{upstream.openai_url}/responses",
                    {"Authorization": "Bearer sk-bench"},
                    args.calls,
                    stream,
                )
                relayed = timed_calls(
                    http,
                    f"{gateway.url}/openai/responses",
                    {"Authorization": f"Bearer {ledger.token}"},
                    args.calls,
                    stream,
                )
                d, g = statistics.median(direct), statistics.median(relayed)
                kind = "streamed (first byte)" if stream else "whole answer (first byte)"
                print(
                    f"{kind}: direct {d * 1000:.2f} ms, through the gateway {g * 1000:.2f} ms,"
                    f" ratio {g / d:.2f}, added {(g - d) * 1000:.2f} ms per call ({args.calls} calls each)"
                )
            print(f"calls logged: {ledger.summary()['calls']}")
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
