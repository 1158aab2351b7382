"""Harness overhead per task on the smoke tasks: wall time beyond the benchmark runs themselves.

    python benchmarks/bench_overhead.py [--agent human] [--rounds 5] [--backend local|docker]

Runs the smoke tasks once with fresh measurements (``--isobench-remeasure``) and reads each item's
duration from the JSON report and each benchmark run's duration from the outcome. Overhead = item
time - agent time - benchmark-run time; reported as a ratio to the benchmark-run time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", default="human")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="local", help="local, or docker (containers per task)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "smoke",
            f"--isobench-agent={args.agent}",
            f"--isobench-rounds={args.rounds}",
            f"--isobench-backend={args.backend}",
            "--isobench-remeasure",
            f"--isobench-runs-dir={tmp}/runs",
            f"--isobench-cache-dir={tmp}/cache",
            "--json-report",
            f"--json-report-file={report}",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        subprocess.run(argv, cwd=ROOT, check=False, capture_output=True)
        data = json.loads(report.read_text())
    total_item = total_bench = total_agent = 0.0
    for test in data["tests"]:
        item = sum(test[phase]["duration"] for phase in ("setup", "call", "teardown") if phase in test)
        (props,) = test["user_properties"]
        outcome = props["isobench"]
        bench = sum(run["duration_s"] for runs in outcome["measured"]["runs"].values() for run in runs)
        agent = outcome["agent_run"].get("duration_s", 0.0)
        overhead = item - bench - agent
        total_item, total_bench, total_agent = total_item + item, total_bench + bench, total_agent + agent
        print(
            f"{outcome['task_id']:<18} item {item:6.2f} s  benchmark runs {bench:6.2f} s"
            f"  agent {agent:5.2f} s  overhead {overhead:5.2f} s  ratio {overhead / bench:.3f}"
        )
    overhead = total_item - total_bench - total_agent
    print(
        f"all smoke tasks ({args.backend}): overhead / benchmark-run time = {overhead / total_bench:.3f}"
        f" ({overhead / len(data['tests']):.2f} s per task)"
    )


if __name__ == "__main__":
    main()
