"""Running a task's benchmark: one run (server first when given), and interleaved rounds of variants.

Rounds are adaptive by default: after the minimum, the agent and the human keep getting fresh
interleaved rounds while the interval of their ratio straddles a band edge, up to the maximum
(``RoundPolicy``). A run that fails to become ready or times out is retried once before it counts;
a baseline or human that still fails stops the whole measurement at once.
"""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..sandbox.base import Sandbox
from ..tasks import Benchmark
from . import hostload, stats
from .parsers import collect_metrics

RunStatus = Literal["ok", "crashed", "timeout", "no_metrics", "server_failed"]
# Statuses worth one more try: the run never got going (server not ready) or hung (timeout).
RETRIED = frozenset({"server_failed", "timeout"})
# Variants the agent is judged against: when one of them fails, the task cannot be judged at all.
REFERENCE_VARIANTS = ("baseline", "human")
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
    started_at: str = ""  # UTC, ISO 8601
    gpus: str | None = None  # the GPU ids the run could use (CUDA_VISIBLE_DEVICES / the sandbox's lease)
    host: dict[str, Any] = field(default_factory=dict)  # load before / during, "loaded": why or None
    retried: str = ""  # why the first attempt did not count, when this is the second

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


def answers(url: str) -> bool:
    """True when ``url`` answers 200 from here (the harness's own network)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_ready(
    url: str, alive: Callable[[], bool], timeout_s: float, probe: Callable[[str], bool] = answers
) -> str | None:
    """Poll ``url`` with ``probe`` until it answers 200; return why not (server died or timed out).

    A server without a network the harness can reach (a docker measurement container) brings its own
    ``probe``, which asks from inside.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        if not alive():
            return "the server exited before it answered"
        if probe(url):
            return None
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
    lease = getattr(sandbox, "lease", None)  # the docker backend's GPU lease, once it holds one
    gpus = ",".join(lease.ids) if lease is not None else hostload.visible_gpus(env)
    before = hostload.sample_before()
    run = BenchRun(
        variant=variant,
        round=round_no,
        status="ok",
        directory=str(out_dir),
        started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        gpus=gpus,
    )
    server = None
    start = time.monotonic()
    monitor = hostload.LoadMonitor()
    monitor.__enter__()
    try:
        if bench.server:
            server_command = substitute(bench.server, port=port, result_dir=result_dir)
            server = sandbox.start(server_command, cwd=tree, env=env, log_path=out_dir / "server.log")
            why = wait_ready(
                substitute(bench.ready_url, port=port, result_dir=result_dir),
                server.alive,
                bench.server_timeout_s,
                getattr(server, "probe", answers),
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
        monitor.__exit__()
        during = monitor.summary()
        # Under a container backend the benchmark is not our child: its CPU is in "others" during the
        # run, so only the reading before the run decides whether the host was loaded.
        judged = during if sandbox.name == "local" else None
        run.host = {"before": before, "during": during, "loaded": hostload.loaded(before, judged, gpus)}
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


def run_with_retry(
    sandbox: Sandbox, bench: Benchmark, tree: Path, out_dir: Path, *, variant: str, round_no: int
) -> BenchRun:
    """One benchmark run; one that failed to become ready or timed out is tried once more (in ``retry/``)."""
    run = run_benchmark(sandbox, bench, tree, out_dir, variant=variant, round_no=round_no)
    if run.status not in RETRIED:
        return run
    again = run_benchmark(sandbox, bench, tree, out_dir / "retry", variant=variant, round_no=round_no)
    again.retried = f"{run.status}: {run.detail}"
    return again


@dataclass
class RoundPolicy:
    """Which variants the next round needs; empty when the measurement is done.

    ``fixed``: that many rounds of every variant. Otherwise (adaptive) the agent and the human get at
    least ``min_rounds`` and then more, up to ``max_rounds``, while the interval of agent/human
    straddles +band or -band (or no interval exists yet). Baseline only feeds informational figures:
    it runs ``baseline_rounds`` rounds (``None``: as many as the minimum); when ``drift_check`` is
    given it is called with the fresh baseline values after those rounds, and True (drifted) extends
    the baseline to the minimum again.
    """

    metric: str
    lower_is_better: bool
    band: float
    fixed: int | None
    min_rounds: int
    max_rounds: int
    baseline_rounds: int | None = None
    drift_check: Callable[[list[float]], bool] | None = None
    drifted: bool | None = None

    @property
    def target(self) -> int:
        return self.fixed if self.fixed is not None else self.min_rounds

    def wanted(self, done: int, runs: Mapping[str, Sequence[BenchRun]]) -> list[str]:
        """Variants (of those in ``runs``) to measure in round ``done`` (0-based) after ``done`` rounds."""
        want: list[str] = []
        if "baseline" in runs:
            base_target = self.target
            if self.baseline_rounds is not None:
                base_target = min(self.baseline_rounds, self.target)
            if self.drift_check is not None and self.drifted is None and done >= base_target:
                self.drifted = self.drift_check(primary_values(runs["baseline"], self.metric))
                if self.drifted:
                    self.baseline_rounds = None
                    base_target = self.target
            if done < base_target:
                want.append("baseline")
        for variant in ("agent", "human"):
            if variant in runs and done < self.target:
                want.append(variant)
        adaptive = self.fixed is None and self.target <= done < self.max_rounds
        if adaptive and "agent" in runs and "human" in runs and self.undecided(runs):
            want += ["agent", "human"]
        return sorted(want)

    def undecided(self, runs: Mapping[str, Sequence[BenchRun]]) -> bool:
        """True while the agent/human interval is missing (too few rounds) or straddles a band edge."""
        agent = primary_values(runs["agent"], self.metric)
        human = primary_values(runs["human"], self.metric)
        if not agent or not human or any(v <= 0 for v in (*agent, *human)):
            return False  # a failed or broken measurement: more rounds will not decide it
        estimate = stats.hodges_lehmann_ratio(agent, human)
        interval = estimate.percent_interval(lower_is_better=self.lower_is_better)
        if interval is None:
            return estimate.refused is not None and estimate.refused.startswith("too few")
        low, high = interval
        return low < self.band < high or low < -self.band < high


@dataclass
class Measurement:
    """Every run by variant, the orders the rounds ran in, and the reference variant that stopped it."""

    runs: dict[str, list[BenchRun]]
    schedule: list[list[str]]
    stopped_by: BenchRun | None = None  # a baseline or human run that failed: the task cannot be judged
    rounds: int = 0


def measure(
    sandbox: Sandbox,
    bench: Benchmark,
    trees: Mapping[str, Path],
    out_dir: Path,
    *,
    policy: RoundPolicy,
    warmup: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> Measurement:
    """Measure the variants in ``trees``: warm-up passes, then rounds while ``policy`` wants more.

    Each pass runs its variants in a fresh shuffled order. A baseline or human run that fails (after
    its retry) stops everything at once: ``stopped_by`` names it. A failing agent stops the measurement
    after the references' runs of that pass (its verdict is "failed" whatever else is measured).
    """
    rng = random.Random(seed)
    runs: dict[str, list[BenchRun]] = {variant: [] for variant in trees}
    result = Measurement(runs=runs, schedule=[])
    passes = 0
    while True:
        round_no = passes - warmup
        variants = sorted(trees) if round_no < 0 else policy.wanted(round_no, runs)
        if not variants:
            break
        order = rng.sample(variants, len(variants))
        result.schedule.append(order)
        name = f"warmup-{passes}" if round_no < 0 else f"round-{round_no}"
        agent_failed = False
        for variant in order:
            if progress:
                progress(f"{name} {variant}")
            run = run_with_retry(
                sandbox, bench, trees[variant], out_dir / name / variant, variant=variant, round_no=round_no
            )
            runs[variant].append(run)
            if run.status != "ok" and variant in REFERENCE_VARIANTS:
                result.stopped_by = run
                return result
            agent_failed = agent_failed or run.status != "ok"
        if agent_failed:  # the pass finished, so a broken reference is still caught (and blamed)
            return result
        passes += 1
        result.rounds = max(0, passes - warmup)
    return result


def interleaved_schedule(variants: Sequence[str], rounds: int, warmup: int, seed: int) -> list[list[str]]:
    """Warm-up passes, then one pass per round, each a fresh shuffle of the variants (as ``measure``)."""
    rng = random.Random(seed)
    return [rng.sample(sorted(variants), len(variants)) for _ in range(warmup + rounds)]


def primary_values(runs: Sequence[BenchRun], metric: str) -> list[float]:
    """The primary metric of each measured (non-warm-up) successful run."""
    return [r.metrics[metric] for r in runs if r.round >= 0 and r.status == "ok" and metric in r.metrics]


def first_failure(runs: Sequence[BenchRun]) -> BenchRun | None:
    return next((r for r in runs if r.status != "ok"), None)
