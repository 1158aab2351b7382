"""What the Ray executor adds per task against the local executor, on the smoke tasks.

    python benchmarks/bench_executor.py [--repeat 2]

A local one-node Ray cluster (one CPU, the measurement slot) is started first and not timed; it runs
one stage at a time, so its tasks run one after another as the local executor's do. Each repeat runs
the three smoke tasks (agent noop, 2 rounds, no warm-up) with the local executor and with the Ray
executor, alternated. The figures: the whole pytest session's wall time, ray / local, and the
difference per task in seconds (connecting to the cluster, shipping the request and the artifacts,
the node's own copy of the task repository, and two task launches).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = (
    "from pytest_isobench import Outcome\n\n\ndef test_task(isobench_outcome: Outcome) -> None:\n    pass\n"
)


def session(project: Path, run_id: str, *extra: str) -> float:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "test_isobench.py",
        "-q",
        "-p",
        "no:cacheprovider",
        "--isobench-tasks=tasks",
        "--isobench-agent=noop",
        "--isobench-rounds=2",
        "--isobench-warmup=0",
        f"--isobench-runs-dir={project / 'runs'}",
        f"--isobench-cache-dir={project / 'cache'}",
        f"--isobench-run-id={run_id}",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if "3 passed" not in done.stdout:
        raise SystemExit(f"the run did not pass all three tasks:\n{done.stdout[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory(prefix="isobench-bench-") as tmp:
        project = Path(tmp)
        shutil.copytree(ROOT / "tasks" / "smoke", project / "tasks" / "smoke")
        (project / "test_isobench.py").write_text(TEST_FILE)
        os.environ["ISOBENCH_NODE_DIR"] = str(project / "nodes")
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "resources": {"measure": 1}, "include_dashboard": False},
        )
        try:
            cluster.wait_for_nodes()
            # Warm both paths once (task repositories built, caches filled), untimed.
            session(project, "warm-local")
            session(project, "warm-ray", f"--isobench-executor=ray:{cluster.address}")
            local, remote = [], []
            for i in range(args.repeat):
                local.append(session(project, f"local-{i}"))
                remote.append(session(project, f"ray-{i}", f"--isobench-executor=ray:{cluster.address}"))
        finally:
            cluster.shutdown()
    per_task = (statistics.median(remote) - statistics.median(local)) / 3
    print(f"local sessions: {', '.join(f'{w:.1f}' for w in local)} s")
    print(f"ray sessions:   {', '.join(f'{w:.1f}' for w in remote)} s")
    print(f"ratio ray / local (medians): {statistics.median(remote) / statistics.median(local):.2f}")
    print(f"difference per task: {per_task:+.2f} s")


if __name__ == "__main__":
    main()
