"""Benchmark online serving latency and throughput of a completions server.

Sends a synthetic workload to an OpenAI-compatible ``/v1/completions`` endpoint with streaming on,
measures time to first token (TTFT), time per output token (TPOT) and inter-token latency (ITL) for
every request, and prints a summary. With ``--save-result`` the summary is also written as JSON.

What is measured: the server's CPU time, not the wall clock. On a shared machine the wall-clock time to
the first token depends on how many other processes want a core; the CPU time the server spends on a
request does not. Before sending a request this client reads the CPU-time clocks of the server's
processes (the process listening on ``--port``, everything below it and the rest of its session,
found in ``/proc``; see ``cpu_clock``), and it reads them again as each token arrives. So TTFT is the
server CPU time from sending the request to receiving its first token, ITL the server CPU time between
two tokens, E2EL the server CPU time to the last token, and the duration the server CPU time of the
whole run; throughputs are per second of that. For the run, the client moves the server's processes
and itself onto the CPU it runs on: the server is then off the CPU whenever the client reads its clocks,
so every reading is exact (a server thread still on another CPU is stopped for the reading), and the
short calibration loop that brackets each request in this client runs on the core that served it. All
figures are reported in reference seconds (see ``cpu_clock``). The clocks are the kernel's: the server
has no say in what is reported. With ``--max-concurrency 1`` every figure belongs to one request; with
several requests in flight, a request's figures include the server work done meanwhile for the others.
The server must run on this machine (in this container), as the same user.

Example::

    python -m minillm.entrypoints.api_server --port 8000 &
    python benchmarks/benchmark_serving.py --port 8000 --num-prompts 100 --random-input-len 1024
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from cpu_clock import ProcessTreeClock, sharing_cpu, speed_factor

# Prompts are made of pronounceable two-syllable words, the kind the minillm tokenizer knows.
ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea")


@dataclass
class SampleRequest:
    prompt: str
    prompt_len: int
    expected_output_len: int


@dataclass
class RequestOutput:
    success: bool = False
    generated_text: str = ""
    prompt_len: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = field(default_factory=list)
    error: str = ""
    factor: float = 1.0


def random_words(rng: random.Random, count: int) -> list[str]:
    """``count`` pseudo-words of two syllables each."""
    syllables = [onset + vowel for onset in ONSETS for vowel in VOWELS]
    firsts = rng.choices(syllables, k=count)
    seconds = rng.choices(syllables, k=count)
    return [a + b for a, b in zip(firsts, seconds, strict=True)]


def sample_random_requests(
    num_prompts: int, input_len: int, output_len: int, prefix_len: int, range_ratio: float, seed: int
) -> list[SampleRequest]:
    """Prompts of random words; all start with the same ``prefix_len`` words (a shared system prompt)."""
    rng = random.Random(seed)
    lexicon = random_words(rng, 4096)
    prefix = rng.choices(lexicon, k=prefix_len)
    requests = []
    for _ in range(num_prompts):
        n_in = rng.randint(int(input_len * range_ratio), input_len)
        n_out = rng.randint(int(output_len * range_ratio), output_len)
        words = prefix + rng.choices(lexicon, k=n_in)
        requests.append(SampleRequest(" ".join(words), len(words), n_out))
    return requests


def listening_pids(port: int) -> list[int]:
    """The processes holding the socket that listens on TCP ``port`` (IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    targets = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for name in os.listdir("/proc") if targets else []:
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") in targets:
                    pids.append(int(name))
                    break
            except OSError:
                continue
    return pids


def server_clock(port: int) -> ProcessTreeClock:
    """The CPU-time clock of the server listening on ``port``; exits if it cannot be read."""
    pids = [pid for pid in listening_pids(port) if pid != os.getpid()]
    if not pids:
        raise SystemExit(
            f"No process of this user listens on port {port} on this machine: the server's CPU time "
            "cannot be measured. Start the server on this machine (in this container), as this user."
        )
    return ProcessTreeClock(pids, session=True, hold=True)


def send_request(
    host: str, port: int, endpoint: str, model: str, request: SampleRequest, clock: ProcessTreeClock
) -> RequestOutput:
    """Send one streaming completion request and measure the server CPU time behind its tokens."""
    output = RequestOutput(prompt_len=request.prompt_len)
    body = json.dumps(
        {
            "model": model,
            "prompt": request.prompt,
            "max_tokens": request.expected_output_len,
            "temperature": 0.0,
            "stream": True,
            "ignore_eos": True,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    factor_before = speed_factor()
    start = previous = clock.reading()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", endpoint, body, headers)
        response = conn.getresponse()
        if response.status != 200:
            output.error = f"HTTP {response.status}: {response.read()[:200]!r}"
            return output
        pieces = []
        while True:
            line = response.readline()
            if not line.startswith(b"data: "):
                if not line:
                    break
                continue
            # The clocks first: the server goes on with the next token meanwhile.
            now = clock.read()
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            text = json.loads(data)["choices"][0]["text"]
            if output.output_tokens == 0:
                now = clock.read_new(now)  # and processes the server started for this request
                output.ttft = ProcessTreeClock.elapsed_ns(start, now) / 1e9
            else:
                output.itl.append(ProcessTreeClock.elapsed_ns(previous, now) / 1e9)
            previous = now
            output.output_tokens += 1
            pieces.append(text)
        output.latency = ProcessTreeClock.elapsed_ns(start, previous) / 1e9
        output.generated_text = "".join(pieces)
        output.success = output.output_tokens > 0
        if not output.success:
            output.error = "no tokens received"
    except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
        output.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    # Report in reference seconds (see cpu_clock): how much work the CPU did in that time.
    output.factor = (factor_before + speed_factor()) / 2
    output.ttft *= output.factor
    output.latency *= output.factor
    output.itl = [gap * output.factor for gap in output.itl]
    return output


def run_requests(
    args: argparse.Namespace, requests: list[SampleRequest]
) -> tuple[list[RequestOutput], float]:
    """Send all requests at the configured rate and concurrency; return the outputs and the server's
    CPU time over the run (reference seconds)."""
    n = len(requests)
    if math.isinf(args.request_rate):
        arrivals = [0.0] * n
    else:
        rng = random.Random(args.seed)
        arrivals, t = [], 0.0
        for _ in range(n):
            arrivals.append(t)
            t += rng.expovariate(args.request_rate)
    outputs: list[RequestOutput | None] = [None] * n
    next_index = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            delay = start + arrivals[i] - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            outputs[i] = send_request(args.host, args.port, args.endpoint, args.model, requests[i], clock)

    clock = server_clock(args.port)
    with sharing_cpu(clock):
        start = time.perf_counter()
        cpu_start = clock.reading()
        workers = [threading.Thread(target=worker) for _ in range(min(args.max_concurrency or n, n))]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        cpu_s = ProcessTreeClock.elapsed_ns(cpu_start, clock.read_new(clock.read())) / 1e9

    done = [o for o in outputs if o is not None]
    factors = [o.factor for o in done] or [speed_factor()]
    return done, cpu_s * sum(factors) / len(factors)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def std(values: list[float]) -> float:
    if not values:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def calculate_metrics(
    outputs: list[RequestOutput], duration: float, percentile_metrics: list[str], percentiles: list[float]
) -> dict:
    done = [o for o in outputs if o.success]
    total_input = sum(o.prompt_len for o in done)
    total_output = sum(o.output_tokens for o in done)
    samples_ms = {
        "ttft": [o.ttft * 1000 for o in done],
        "tpot": [(o.latency - o.ttft) / (o.output_tokens - 1) * 1000 for o in done if o.output_tokens > 1],
        "itl": [gap * 1000 for o in done for gap in o.itl],
        "e2el": [o.latency * 1000 for o in done],
    }
    result: dict = {
        "duration": duration,
        "completed": len(done),
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": len(done) / duration,
        "output_throughput": total_output / duration,
        "total_token_throughput": (total_input + total_output) / duration,
    }
    for name in percentile_metrics:
        values = samples_ms[name]
        result[f"mean_{name}_ms"] = mean(values)
        result[f"median_{name}_ms"] = percentile(values, 50)
        result[f"std_{name}_ms"] = std(values)
        for p in percentiles:
            result[f"p{p:g}_{name}_ms"] = percentile(values, p)
    return result


SECTION_TITLES = {
    "ttft": ("Time to First Token", "TTFT"),
    "tpot": ("Time per Output Token (excl. 1st token)", "TPOT"),
    "itl": ("Inter-token Latency", "ITL"),
    "e2el": ("End-to-end Latency", "E2EL"),
}


def print_result(result: dict, percentile_metrics: list[str], percentiles: list[float]) -> None:
    print("{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="="))
    print("{:<40} {:<10}".format("Successful requests:", result["completed"]))
    print("{:<40} {:<10.2f}".format("Benchmark duration (s):", result["duration"]))
    print("{:<40} {:<10}".format("Total input tokens:", result["total_input_tokens"]))
    print("{:<40} {:<10}".format("Total generated tokens:", result["total_output_tokens"]))
    print("{:<40} {:<10.2f}".format("Request throughput (req/s):", result["request_throughput"]))
    print("{:<40} {:<10.2f}".format("Output token throughput (tok/s):", result["output_throughput"]))
    print("{:<40} {:<10.2f}".format("Total Token throughput (tok/s):", result["total_token_throughput"]))
    for name in percentile_metrics:
        title, label = SECTION_TITLES[name]
        print("{s:{c}^{n}}".format(s=title, n=50, c="-"))
        print("{:<40} {:<10.2f}".format(f"Mean {label} (ms):", result[f"mean_{name}_ms"]))
        print("{:<40} {:<10.2f}".format(f"Median {label} (ms):", result[f"median_{name}_ms"]))
        for p in percentiles:
            print("{:<40} {:<10.2f}".format(f"P{p:g} {label} (ms):", result[f"p{p:g}_{name}_ms"]))
    print("=" * 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="minillm")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--endpoint", default="/v1/completions")
    parser.add_argument("--model", default="minillm-toy")
    parser.add_argument("--dataset-name", default="random", choices=["random"])
    parser.add_argument("--num-prompts", type=int, default=100)
    parser.add_argument("--random-input-len", type=int, default=1024)
    parser.add_argument("--random-output-len", type=int, default=16)
    parser.add_argument("--random-prefix-len", type=int, default=0)
    parser.add_argument("--random-range-ratio", type=float, default=1.0)
    parser.add_argument("--request-rate", type=float, default=float("inf"))
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--percentile-metrics", default="ttft,tpot,itl")
    parser.add_argument("--metric-percentiles", default="99")
    parser.add_argument("--save-result", action="store_true")
    parser.add_argument("--save-detailed", action="store_true")
    parser.add_argument("--result-dir", default=None)
    parser.add_argument("--result-filename", default=None)
    parser.add_argument("--metadata", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    percentile_metrics = [m for m in args.percentile_metrics.split(",") if m]
    unknown = sorted(set(percentile_metrics) - set(SECTION_TITLES))
    if unknown:
        parser.error(f"unknown --percentile-metrics {unknown}")
    percentiles = [float(p) for p in args.metric_percentiles.split(",") if p]

    requests = sample_random_requests(
        args.num_prompts,
        args.random_input_len,
        args.random_output_len,
        args.random_prefix_len,
        args.random_range_ratio,
        args.seed,
    )

    print("Starting initial single prompt test run...")
    test = send_request(args.host, args.port, args.endpoint, args.model, requests[0], server_clock(args.port))
    if not test.success:
        raise SystemExit(
            f"Initial test run failed - please make sure the server is running. Error: {test.error}"
        )
    print("Initial test run completed. Starting main benchmark run...")
    print(f"Traffic request rate: {args.request_rate}")
    print("Burstiness factor: 1.0 (Poisson process)")
    print(f"Maximum request concurrency: {args.max_concurrency}")

    outputs, duration = run_requests(args, requests)
    errors = [o.error for o in outputs if not o.success]
    if errors:
        print(f"{len(errors)} request(s) failed, first error: {errors[0]}")
    result = calculate_metrics(outputs, duration, percentile_metrics, percentiles)
    print_result(result, percentile_metrics, percentiles)

    if args.save_result:
        now = datetime.now().strftime("%Y%m%d-%H%M%S")
        saved: dict = {
            "date": now,
            "backend": args.backend,
            "model_id": args.model,
            "tokenizer_id": args.model,
            "num_prompts": args.num_prompts,
        }
        for item in args.metadata:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"--metadata expects KEY=VALUE, got {item!r}")
            saved[key] = value
        saved["request_rate"] = args.request_rate if math.isfinite(args.request_rate) else "inf"
        saved["burstiness"] = 1.0
        saved["max_concurrency"] = args.max_concurrency
        saved.update(result)
        if args.save_detailed:
            saved["input_lens"] = [o.prompt_len for o in outputs]
            saved["output_lens"] = [o.output_tokens for o in outputs]
            saved["ttfts"] = [o.ttft for o in outputs]
            saved["itls"] = [o.itl for o in outputs]
            saved["generated_texts"] = [o.generated_text for o in outputs]
            saved["errors"] = [o.error for o in outputs]
        rate = "inf" if math.isinf(args.request_rate) else f"{args.request_rate:g}"
        concurrency = f"-concurrency{args.max_concurrency}" if args.max_concurrency else ""
        filename = args.result_filename or f"{args.backend}-{rate}qps{concurrency}-{args.model}-{now}.json"
        if args.result_dir:
            os.makedirs(args.result_dir, exist_ok=True)
            filename = os.path.join(args.result_dir, filename)
        with open(filename, "w", encoding="utf-8") as handle:
            json.dump(saved, handle, indent=2)


if __name__ == "__main__":
    main()
