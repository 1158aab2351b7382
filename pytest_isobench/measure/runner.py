"""Running a task's benchmark: one run (server first when given), and interleaved rounds of variants."""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..sandbox.base import Sandbox
from ..tasks import Benchmark
from .parsers import collect_metrics

RunStatus = Literal["ok", "crashed", "timeout", "no_metrics", "server_failed"]
# How a failed agent run is reported in the hard verdict.
FAILURE_REASON: dict[str, str] = {
    "crashed": "benchmark_crashed",
    "server_failed": "benchmark_crashed",
    "timeout": "timeout",
    "no_metrics": "no_metrics",
}


@dataclass
class BenchRun:
    """One benchmark run of one variant; raw output stays in ``directory``."""

    variant: str
    round: int  # -1 for warm-up runs
    status: RunStatus
    metrics: dict[str, float] = field(default_factory=dict)
    returncode: int | None = None
    duration_s: float = 0.0
    detail: str = ""
    directory: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def substitute(text: str, *, port: int, result_dir: Path) -> str:
    """Fill the task file's placeholders (plain text replacement, so other braces are left alone)."""
    return text.replace("{port}", str(port)).replace("{result_dir}", str(result_dir))


def wait_ready(url: str, alive: Callable[[], bool], timeout_s: float) -> str | None:
    """Poll ``url`` until it answers 200; return why not (server died or timed out), else None."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        if not alive():
            return "the server exited before it answered"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    return f"the server did not answer {url} within {timeout_s:g} s"


def run_benchmark(
    sandbox: Sandbox, bench: Benchmark, tree: Path, out_dir: Path, *, variant: str, round_no: int
) -> BenchRun:
    """Run the benchmark once on ``tree``; its output, server log and results go to ``out_dir``."""
    assert bench.command is not None
    result_dir = out_dir / "results"
    result_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**sandbox.environment(tree), **bench.env}
    run = BenchRun(variant=variant, round=round_no, status="ok", directory=str(out_dir))
    server = None
    start = time.monotonic()
    try:
        if bench.server:
            server_command = substitute(bench.server, port=port, result_dir=result_dir)
            server = sandbox.start(server_command, cwd=tree, env=env, log_path=out_dir / "server.log")
            why = wait_ready(
                substitute(bench.ready_url, port=port, result_dir=result_dir),
                server.alive,
                bench.server_timeout_s,
            )
            if why is not None:
                run.status, run.detail = "server_failed", why
                return run
        result = sandbox.run(
            substitute(bench.command, port=port, result_dir=result_dir),
            cwd=tree,
            env=env,
            timeout_s=bench.timeout_s,
            stdout_path=out_dir / "stdout.txt",
            stderr_path=out_dir / "stderr.txt",
        )
    finally:
        if server is not None:
            server.stop()
        run.duration_s = time.monotonic() - start
    run.returncode = result.returncode
    if result.timed_out:
        run.status, run.detail = "timeout", f"the benchmark ran past {bench.timeout_s:g} s"
    elif result.returncode != 0:
        run.status = "crashed"
        run.detail = f"exit code {result.returncode}: {result.stderr_tail(5)}"
    run.metrics = collect_metrics(result.stdout(), result_dir)
    (out_dir / "metrics.json").write_text(json.dumps(run.metrics, indent=2, sort_keys=True) + "\n")
    if run.status == "ok" and bench.metric not in run.metrics:
        found = ", ".join(sorted(run.metrics)) or "none"
        run.status, run.detail = "no_metrics", f"no {bench.metric!r} in the output (found: {found})"
    return run


def interleaved_schedule(variants: Sequence[str], rounds: int, warmup: int, seed: int) -> list[list[str]]:
    """Warm-up passes, then one pass per round, each a fresh shuffle of the variants."""
    rng = random.Random(seed)
    return [rng.sample(list(variants), len(variants)) for _ in range(warmup + rounds)]


def measure(
    sandbox: Sandbox,
    bench: Benchmark,
    trees: Mapping[str, Path],
    out_dir: Path,
    *,
    rounds: int,
    warmup: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, list[BenchRun]], list[list[str]]]:
    """Measure each variant in ``trees``; a variant that fails once is not run again."""
    schedule = interleaved_schedule(sorted(trees), rounds, warmup, seed)
    runs: dict[str, list[BenchRun]] = {variant: [] for variant in trees}
    failed: set[str] = set()
    for index, order in enumerate(schedule):
        round_no = index - warmup
        for variant in order:
            if variant in failed:
                continue
            name = f"warmup-{index}" if round_no < 0 else f"round-{round_no}"
            if progress:
                progress(f"{name} {variant}")
            run = run_benchmark(
                sandbox, bench, trees[variant], out_dir / name / variant, variant=variant, round_no=round_no
            )
            runs[variant].append(run)
            if run.status != "ok":
                failed.add(variant)
    return runs, schedule


def primary_values(runs: Sequence[BenchRun], metric: str) -> list[float]:
    """The primary metric of each measured (non-warm-up) successful run."""
    return [r.metrics[metric] for r in runs if r.round >= 0 and r.status == "ok" and metric in r.metrics]


def first_failure(runs: Sequence[BenchRun]) -> BenchRun | None:
    return next((r for r in runs if r.status != "ok"), None)
