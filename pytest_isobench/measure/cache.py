"""Cached baseline and human measurements, keyed by everything that could change their numbers.

The key covers the task, the variant's commit, the benchmark configuration, the rounds, the machine
fingerprint and the harness version, so a cached result is only ever reused where it would have been
measured the same way. Every agent of later runs on the same machine reuses them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from .. import __version__
from ..results import write_json
from ..tasks import Task
from .benchfiles import benchmark_patterns
from .runner import BenchRun

CACHE_FORMAT = 1


@functools.cache
def machine_fingerprint() -> dict[str, Any]:
    """What identifies this machine's performance: host, CPU, GPUs, Python."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.TimeoutExpired):
            gpus = []
    return {
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "gpus": gpus,
        "python": platform.python_version(),
    }


def measurement_key(task: Task, variant: str, *, rounds: int, warmup: int, backend: str) -> str:
    """Content hash of everything a baseline or human measurement depends on."""
    commit = task.base_commit if variant == "baseline" else task.human_commit
    bench = task.benchmark
    material = {
        "format": CACHE_FORMAT,
        "task": task.id,
        "variant": variant,
        "commit": commit,
        "command": bench.command,
        "server": bench.server,
        "ready_url": bench.ready_url,
        "env": bench.env,
        "benchmark_files": benchmark_patterns(task),  # measured with the reference tree's files
        "rounds": rounds,
        "warmup": warmup,
        "backend": backend,
        "machine": machine_fingerprint(),
        "harness": __version__,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class MeasurementCache:
    """Files under ``<cache>/measurements/<task>/<variant>-<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "measurements"

    def _path(self, task: Task, variant: str, key: str) -> Path:
        return self.root / task.id / f"{variant}-{key[:24]}.json"

    def load(self, task: Task, variant: str, key: str) -> list[BenchRun] | None:
        path = self._path(task, variant, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                return None
            return [BenchRun(**run) for run in data["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a missing or damaged entry is measured again

    def store(self, task: Task, variant: str, key: str, runs: list[BenchRun]) -> None:
        if any(run.status != "ok" for run in runs):
            return  # only clean measurements are worth reusing
        write_json(self._path(task, variant, key), {"key": key, "runs": [run.to_json() for run in runs]})
