"""The bundled smoke tasks end to end, as the README runs them: green with `human`, red with `noop`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["smoke-latency", "smoke-serving", "smoke-throughput"]


def run_smoke(
    agent: str, state: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, object]]]:
    report = state / f"{agent}.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--isobench-agent=" + agent,
        "-m",
        "smoke",
        "-p",
        "no:cacheprovider",
        f"--isobench-runs-dir={state / 'runs'}",
        f"--isobench-cache-dir={state / 'cache'}",
        "--isobench-judge=overlap",
        "--json-report",
        f"--json-report-file={report}",
        *extra,
    ]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    tests = json.loads(report.read_text())["tests"]
    outcomes = {
        t["user_properties"][0]["isobench"]["task_id"]: t["user_properties"][0]["isobench"] for t in tests
    }
    return result, outcomes


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smoke")


def test_human_passes_every_smoke_task(state: Path) -> None:
    # Adaptive rounds (the default): identical code must land within ±5 % even on a busy machine.
    result, outcomes = run_smoke("human", state)
    missed = [o for o in outcomes.values() if o["hard"] not in ("beats", "similar")]
    if missed and all(o["inconclusive"] for o in missed):
        # The harness itself flagged these verdicts as within the noise around the band (a busy
        # machine): measure all three variants once more. A confident wrong verdict still fails.
        result, outcomes = run_smoke("human", state, "--isobench-remeasure")
    assert sorted(outcomes) == SMOKE
    assert result.returncode == 0, result.stdout[-3000:]
    for outcome in outcomes.values():
        assert outcome["hard"] in ("beats", "similar")
        assert outcome["bottleneck"] == "same_target" and outcome["quadrant"] == "Q1"
        assert outcome["correctness"] == "pass"
        # each fix is worth well over 5 % against the baseline
        assert outcome["hard_detail"]["human_vs_baseline_pct"] > 20


def test_noop_fails_every_smoke_task(state: Path) -> None:
    result, outcomes = run_smoke("noop", state)
    assert sorted(outcomes) == SMOKE
    assert result.returncode == 1
    for outcome in outcomes.values():
        assert outcome["hard"] == "worse" and outcome["hard_pct"] < -5
        assert outcome["patch"]["empty"] is True
        assert outcome["bottleneck"] == "no_optimization" and outcome["quadrant"] == "Q4"


# -- how the smoke benchmarks measure: CPU time of the measured processes, never the wall clock ------

BENCHMARKS = ROOT / "tasks" / "smoke" / "serving" / "base" / "benchmarks"

# A streaming completions server that does what its mode says before the first token: ``sleep``
# (0.5 s of wall time, no CPU), ``child`` (0.15 s of CPU in a child process it starts and waits for),
# ``thread`` (0.15 s of CPU in a thread), ``plain`` (nothing). It also claims a tiny TTFT of its own.
FAKE_SERVER = r"""
import json, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BURN = "import time\nwhile time.process_time() < 0.15: pass"

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        mode = sys.argv[2]
        if mode == "sleep":
            time.sleep(0.5)
        elif mode == "child":
            subprocess.run([sys.executable, "-c", BURN], check=True)
        elif mode == "thread":
            start = time.thread_time()
            while time.thread_time() - start < 0.15:
                pass
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for _ in range(3):
            chunk = {"choices": [{"text": "a", "finish_reason": None}], "ttft_ms": 0.001}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def serve_and_measure(tmp_path: Path, mode: str) -> dict[str, float]:
    """Run the smoke serving benchmark against FAKE_SERVER in ``mode``; the metrics the harness reads."""
    from pytest_isobench.measure.parsers import collect_metrics
    from pytest_isobench.measure.runner import free_port, wait_ready

    script = tmp_path / "server.py"
    script.write_text(FAKE_SERVER)
    port = free_port()
    server = subprocess.Popen([sys.executable, str(script), str(port), mode])
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/health", lambda: server.poll() is None, 30) is None
        results = tmp_path / f"results-{mode}"
        bench = subprocess.run(
            [
                sys.executable,
                str(BENCHMARKS / "benchmark_serving.py"),
                f"--port={port}",
                "--num-prompts=1",
                "--random-input-len=16",
                "--random-output-len=3",
                "--max-concurrency=1",
                "--save-result",
                f"--result-dir={results}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        server.kill()
        server.wait()
    assert bench.returncode == 0, bench.stderr[-2000:]
    return collect_metrics(bench.stdout, results)


def test_serving_benchmark_counts_the_servers_cpu_time_not_wall_time_or_its_claims(tmp_path: Path) -> None:
    plain = serve_and_measure(tmp_path, "plain")
    sleeping = serve_and_measure(tmp_path, "sleep")
    child = serve_and_measure(tmp_path, "child")
    thread = serve_and_measure(tmp_path, "thread")
    for metrics in (plain, sleeping, child, thread):
        assert metrics["completed"] == 1
        assert {"mean_ttft_ms", "mean_tpot_ms", "output_throughput"} <= set(metrics)
    # Half a second of waiting costs no CPU: it does not show (the vLLM result format is kept).
    assert sleeping["mean_ttft_ms"] < 100
    # 0.15 CPU seconds per request, in a thread or in a child process the server waited for, all show:
    # far above the plain server's figure, whatever the server claims about itself.
    assert child["mean_ttft_ms"] > 10 * max(plain["mean_ttft_ms"], sleeping["mean_ttft_ms"], 1)
    assert thread["mean_ttft_ms"] > 10 * max(plain["mean_ttft_ms"], sleeping["mean_ttft_ms"], 1)


def test_serving_benchmark_without_a_server_on_this_machine_says_so(tmp_path: Path) -> None:
    from pytest_isobench.measure.runner import free_port

    client = [sys.executable, str(BENCHMARKS / "benchmark_serving.py"), f"--port={free_port()}"]
    bench = subprocess.run(
        [*client, "--num-prompts=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bench.returncode != 0
    assert "listens on port" in bench.stderr


CPU_TIMER_PROBE = r"""
import signal, subprocess, sys, threading, time
sys.path.insert(0, sys.argv[1])
from cpu_clock import CpuTimer

BURN = "import time\nwhile time.process_time() < 0.15: pass"
timer = CpuTimer(slice_s=float(sys.argv[2]) or None)
with timer:
    time.sleep(0.5)
print("sleep", timer.cpu_s)
with timer:
    subprocess.run([sys.executable, "-c", BURN], check=True)
print("reaped-child", timer.cpu_s)
with timer:
    child = subprocess.Popen(
        [sys.executable, "-c", BURN + "\nprint(flush=True)\ntime.sleep(30)"], stdout=subprocess.PIPE
    )
    child.stdout.readline()  # the child has burnt its 0.15 s and stays alive
print("live-child", timer.cpu_s)
child.kill()
def spin():
    start = time.thread_time()
    while time.thread_time() - start < 0.15:
        pass
with timer:
    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
print("thread", timer.cpu_s)
with timer:
    start = time.thread_time()
    while time.thread_time() - start < 0.15:
        pass
print("main", timer.cpu_s)
print("main-slices", timer.slices)
print("timer-left", sum(signal.getitimer(signal.ITIMER_PROF)))
print("handler-restored", int(signal.getsignal(signal.SIGPROF) == signal.SIG_DFL))
"""


@pytest.mark.parametrize(("task", "slice_s"), [("latency", 0.0), ("throughput", 0.0), ("throughput", 0.01)])
def test_cpu_timer_counts_work_in_threads_and_children_but_not_waiting(
    tmp_path: Path, task: str, slice_s: float
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(CPU_TIMER_PROBE)
    benchmarks = ROOT / "tasks" / "smoke" / task / "base" / "benchmarks"
    result = subprocess.run(
        [sys.executable, str(probe), str(benchmarks), str(slice_s)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    cpu = {name: float(value) for name, value in (line.split() for line in result.stdout.splitlines())}
    assert cpu["sleep"] < 0.1
    assert cpu["reaped-child"] >= 0.14
    assert cpu["live-child"] >= 0.14
    assert cpu["thread"] >= 0.14
    # 0.15 s of this thread's CPU time, less the calibrations between slices (not counted)
    assert 0.1 <= cpu["main"] <= 0.16
    # nothing is left armed afterwards
    assert cpu["timer-left"] == 0 and cpu["handler-restored"] == 1
    if slice_s:
        assert cpu["main-slices"] >= 5  # 0.15 s of CPU time cut into slices of about 0.01 s
    else:
        assert cpu["main-slices"] == 0


def test_the_smoke_tasks_share_one_cpu_clock() -> None:
    copies = {path.read_text() for path in (ROOT / "tasks" / "smoke").glob("*/base/benchmarks/cpu_clock.py")}
    assert len(copies) == 1


# A process that burns CPU counting in shared memory, with no system call that would bring its clock up
# to date; it counts at a steady rate, so its count tells how much CPU time it has had.
COUNTER = r"""
import mmap, sys
with open(sys.argv[1], "r+b") as handle:
    count = memoryview(mmap.mmap(handle.fileno(), 8)).cast("q")
while True:
    count[0] += 1
"""

HOLD_PROBE = r"""
import mmap, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from cpu_clock import ProcessTreeClock

shared_path, counter = sys.argv[2], sys.argv[3]
with open(shared_path, "wb") as handle:
    handle.write(bytes(8))
with open(shared_path, "r+b") as handle:
    count = memoryview(mmap.mmap(handle.fileno(), 8)).cast("q")
child = subprocess.Popen([sys.executable, counter, shared_path])
while count[0] < 1_000_000:
    time.sleep(0.01)
clock = ProcessTreeClock([child.pid], hold=sys.argv[4] == "hold")
read_clocks = clock._read

def read_and_count():
    reading = read_clocks()  # inside the hold: the counter is stopped
    print("at", reading[child.pid], count[0])
    return reading

clock._read = read_and_count
for _ in range(60):
    clock.read()
    time.sleep(0.003)
with open(f"/proc/{child.pid}/stat") as handle:
    print("state-after", handle.read().rsplit(")", 1)[1].split()[0], 0)
child.kill()
"""


def hold_probe(tmp_path: Path, hold: str) -> tuple[list[float], str]:
    """Readings of a busy counter 3 ms apart: the CPU time per count between each two, and its state after."""
    (tmp_path / "counter.py").write_text(COUNTER)
    (tmp_path / "probe.py").write_text(HOLD_PROBE)
    argv = [str(tmp_path / name) for name in ("probe.py", "shared", "counter.py")]
    result = subprocess.run(
        [sys.executable, argv[0], str(BENCHMARKS), *argv[1:], hold],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [line.split() for line in result.stdout.splitlines()]
    points = [(int(ns), int(count)) for name, ns, count in lines if name == "at"]
    # pairs where it counted a fair amount (on a busy machine it may not have run in between)
    rates = [
        (ns2 - ns1) / (c2 - c1) for (ns1, c1), (ns2, c2) in itertools.pairwise(points) if c2 - c1 > 10_000
    ]
    return rates, lines[-1][1]


def test_held_readings_of_a_busy_process_are_exact(tmp_path: Path) -> None:
    # Linux updates another process's CPU clock only at the scheduler tick while it runs: readings 3 ms
    # apart would often show no progress at all, then a whole tick. Held ones stop the process first
    # and show the CPU time it had, in step with what it counted.
    rates, state_after = hold_probe(tmp_path, "hold")
    assert len(rates) >= 10, rates
    # (the machine's speed may change meanwhile, so a lenient band: a stale reading gives 0)
    middle = sorted(rates)[len(rates) // 2]
    assert all(0.25 * middle <= rate <= 4 * middle for rate in rates), rates
    # and it runs again afterwards (SIGCONT)
    assert state_after not in ("T", "t")


SHARE_PROBE = r"""
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from cpu_clock import ProcessTreeClock, sharing_cpu

SERVER = "\n".join([
    "import threading, time",
    "time.sleep(float(input()))",
    "threading.Thread(target=time.sleep, args=(30,)).start()",
    "time.sleep(30)",
])
child = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, text=True)

def masks():
    return sorted(sorted(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{child.pid}/task"))

seen = {"everything": sorted(os.sched_getaffinity(0)), "before": masks()}
clock = ProcessTreeClock([child.pid], hold=True)
with sharing_cpu(clock) as cpu:
    child.stdin.write("0\n"); child.stdin.flush()  # it starts a thread now
    while len(os.listdir(f"/proc/{child.pid}/task")) < 2:
        time.sleep(0.01)
    seen.update(cpu=cpu, inside=masks(), own_inside=sorted(os.sched_getaffinity(0)))
seen.update(after=masks(), own_after=sorted(os.sched_getaffinity(0)))
print(json.dumps(seen))
child.kill()
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs to tell one CPU from all")
def test_the_serving_client_shares_one_cpu_with_the_server_and_gives_it_back(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(SHARE_PROBE)
    result = subprocess.run(
        [sys.executable, str(probe), str(BENCHMARKS)], capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(result.stdout)
    everything, cpu = seen["everything"], seen["cpu"]
    assert len(everything) >= 2 and seen["before"] == [everything]
    # the server's threads, the one it started meanwhile included, and the client: all on one CPU
    assert seen["inside"] == [[cpu], [cpu]] and seen["own_inside"] == [cpu]
    # afterwards every thread may run anywhere again, as before
    assert seen["after"] == [everything, everything] and seen["own_after"] == everything
