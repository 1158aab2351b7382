"""The bundled smoke tasks end to end, as the README runs them: green with `human`, red with `noop`."""

from __future__ import annotations

import json
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
    child = subprocess.Popen([sys.executable, "-c", BURN + "\ntime.sleep(30)"])
    while True:  # the child burns its 0.15 s and stays alive
        with open(f"/proc/{child.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        if int(fields[11]) + int(fields[12]) >= 15:  # utime + stime, in ticks of 10 ms
            break
        time.sleep(0.01)
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
