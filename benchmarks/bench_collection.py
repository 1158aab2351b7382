"""Collection time of the full task catalog against bare pytest start-up, as a ratio.

    python benchmarks/bench_collection.py [--repeat 7]

Both commands run in fresh interpreters; the figure is median(catalog) / median(bare).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    catalog = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory() as empty:
        (Path(empty) / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        bare = [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:isobench",
        ]
        runs_catalog, runs_bare = [], []
        for _ in range(args.repeat):  # alternate, so drift hits both alike
            runs_bare.append(timed(bare, Path(empty)))
            runs_catalog.append(timed(catalog, ROOT))
    items = subprocess.run(catalog, cwd=ROOT, capture_output=True, text=True, check=True).stdout.count(
        "::test_task["
    )
    ratio = statistics.median(runs_catalog) / statistics.median(runs_bare)
    print(f"catalog items: {items}")
    print(f"bare pytest start-up (median of {args.repeat}): {statistics.median(runs_bare):.3f} s")
    print(f"collect the catalog  (median of {args.repeat}): {statistics.median(runs_catalog):.3f} s")
    print(f"ratio catalog / bare: {ratio:.2f}")


if __name__ == "__main__":
    main()
