"""Calibration of the hard verdict: how often it is wrong, how often inconclusive, how many rounds it takes.

    python benchmarks/calibrate.py [--trials 400] [--smoke-runs 0] [--workload-trials 0] [--load both]

Three sources of measurements, each judged by the harness's own rounds policy and verdict
(``pytest_isobench.measure.simulate``):

- synthetic: draws from a log-normal noise model (3 % and 5 % CV, and 3 % CV with 5 % outlier rounds)
  with a true effect of 0 %, +3 % and +8 %; adaptive rounds (5-20) and, for comparison, the old fixed
  5 rounds. No machine noise enters: these figures are exact for the model and repeatable per seed.
- workload (``--workload-trials``): a real tiny CPU loop timed on this machine (agent loop doing
  1/(1 + effect) of the human's work) by wall-clock or process CPU time, so the machine's own noise
  decides.
- smoke (``--smoke-runs``): ``pytest --isobench-agent=human -m smoke`` run N times with fresh state;
  the human oracle against itself must come out beats/similar on every task.

``--load`` runs the machine-noise parts without load, with two CPU-burning processes, or both.
A verdict is "wrong" when it differs from the true effect's verdict under the ±5 % rule (for the
smoke runs: when the human is not beats/similar).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_isobench.measure.simulate import Rates, lognormal_draw, rates  # noqa: E402

EFFECTS = (0.0, 3.0, 8.0)
BURNERS = 2


def _burn() -> None:
    while True:
        pass


@contextlib.contextmanager
def cpu_load(active: bool) -> Iterator[None]:
    """Two processes spinning on the CPU while the block runs (nothing when not active)."""
    procs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(BURNERS if active else 0)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def spin(iterations: int) -> None:
    total = 0
    for i in range(iterations):
        total += i * i
    if total < 0:
        raise AssertionError


def workload_draw(clock: str, base_iterations: int = 200_000) -> Callable[[random.Random, float], float]:
    """A round of a real CPU loop: throughput = 1 / seconds for 100/true of the base work.

    ``clock``: ``wall`` (perf_counter: other processes' load enters) or ``cpu`` (this process's CPU
    time: what the work itself costs).
    """
    timer = time.perf_counter if clock == "wall" else time.process_time

    def draw(_rng: random.Random, true: float) -> float:
        iterations = int(base_iterations * 100.0 / true)
        start = timer()
        spin(iterations)
        return 1.0 / max(timer() - start, 1e-9)

    return draw


def row(source: str, cv: str, effect: float, mode: str, result: Rates) -> str:
    return (
        f"| {source} | {cv} | {effect:+.0f} % | {mode} | {result.trials} | {result.wrong_pct:.1f} % |"
        f" {result.inconclusive_pct:.1f} % | {result.mean_rounds:.1f} |"
    )


def smoke_runs(runs: int, loaded: bool) -> str:
    """N runs of the human on the smoke tasks: wrong (not beats/similar) and inconclusive shares, rounds."""
    wrong = inconclusive = tasks = 0
    used: list[int] = []
    all_green = 0
    with cpu_load(loaded):
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "report.json"
                argv = [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-m",
                    "smoke",
                    "--isobench-agent=human",
                    f"--isobench-runs-dir={tmp}/runs",
                    f"--isobench-cache-dir={tmp}/cache",
                    "--json-report",
                    f"--json-report-file={report}",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                ]
                done = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True)
                all_green += done.returncode == 0
                for test in json.loads(report.read_text())["tests"]:
                    outcome = test["user_properties"][0]["isobench"]
                    tasks += 1
                    wrong += outcome["hard"] not in ("beats", "similar")
                    inconclusive += bool(outcome["inconclusive"])
                    used.append(int((outcome["hard_detail"].get("rounds") or {}).get("agent", 0)))
    mean = sum(used) / len(used) if used else 0.0
    return (
        f"| smoke human oracle, {'2 burners' if loaded else 'no load'} | {runs} runs, {tasks} task verdicts |"
        f" {100.0 * wrong / max(tasks, 1):.1f} % | {100.0 * inconclusive / max(tasks, 1):.1f} % |"
        f" {mean:.1f} |"
        f" {all_green}/{runs} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=400, help="synthetic trials per cell (0: none)")
    parser.add_argument("--workload-trials", type=int, default=0, help="real CPU-loop trials per cell")
    parser.add_argument("--smoke-runs", type=int, default=0, help="full smoke-suite runs of the human")
    parser.add_argument("--workload-clock", choices=("cpu", "wall", "both"), default="both")
    parser.add_argument("--load", choices=("none", "burners", "both"), default="both")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    loads = {"none": [False], "burners": [True], "both": [False, True]}[args.load]

    print("| source | noise | true effect | rounds | trials | wrong | inconclusive | mean rounds |")
    print("|---|---|---|---|---|---|---|---|")
    models = {"3 % CV": lognormal_draw(3.0), "5 % CV": lognormal_draw(5.0)}
    models["3 % CV + 5 % outliers"] = lognormal_draw(3.0, outliers=0.05)
    for name, draw in models.items() if args.trials else []:
        for effect in EFFECTS:
            seed = args.seed + int(effect * 10)
            adaptive = rates(effect, draw, trials=args.trials, seed=seed)
            fixed = rates(effect, draw, trials=args.trials, seed=seed, fixed=5)
            print(row("synthetic", name, effect, "auto 5-20", adaptive), flush=True)
            print(row("synthetic", name, effect, "fixed 5", fixed), flush=True)
    clocks = ["cpu", "wall"] if args.workload_clock == "both" else [args.workload_clock]
    for clock in clocks if args.workload_trials else []:
        for loaded in loads:
            with cpu_load(loaded):
                for effect in EFFECTS:
                    draw = workload_draw(clock)
                    result = rates(effect, draw, trials=args.workload_trials, seed=args.seed)
                    label = f"CPU loop ({clock} time), {'2 burners' if loaded else 'no load'}"
                    print(row(label, "this machine", effect, "auto 5-20", result), flush=True)
    if args.smoke_runs:
        print()
        print("| smoke | runs | human not beats/similar | inconclusive | mean rounds | all green |")
        print("|---|---|---|---|---|---|")
        for loaded in loads:
            print(smoke_runs(args.smoke_runs, loaded), flush=True)


if __name__ == "__main__":
    main()
