"""Cached baseline and human measurements, keyed by everything that could change their numbers.

The key covers the task, the variant's commit, the benchmark configuration, the warm-up, the machine
fingerprint, the harness version and a hash of the measurement code itself, so a cached result is
only ever reused where it would have been measured the same way. Each entry records when, in which
run, under which package versions and under what host load it was measured, and carries a checksum
of its content: an entry whose checksum does not match (edited by hand or by an agent) is discarded
with a warning and measured again. The human is always measured fresh next to the agent (a cached
human only says how the fresh one compares); the baseline may be reused after a drift check.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..cachefile import ChecksummedStore, source_hash
from ..cachefile import checksum as checksum  # re-exported: entries are checked with it
from ..tasks import Task
from .benchfiles import benchmark_patterns
from .runner import BenchRun

CACHE_FORMAT = 2
MEASURE_DIR = Path(__file__).resolve().parent
# Packages whose version is recorded with each entry (those present).
RECORDED_PACKAGES = ("pytest-isobench", "torch", "vllm", "sglang", "transformers", "triton")


@functools.cache
def measurement_code_hash() -> str:
    """Hash of the measurement code (every ``pytest_isobench/measure/*.py``): part of every cache key."""
    return source_hash(MEASURE_DIR)


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a measurement (Python, this harness, engines if installed)."""
    found = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class CacheEntry:
    """A cached measurement: its runs and how they were measured."""

    runs: list[BenchRun]
    info: dict[str, Any]  # measured_at, run_id, harness, versions, machine, backend, rounds, load


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


def measurement_key(task: Task, variant: str, *, warmup: int, backend: str) -> str:
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
        "warmup": warmup,
        "backend": backend,
        "machine": machine_fingerprint(),
        "harness": __version__,
        "measure_code": measurement_code_hash(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class MeasurementCache:
    """Files under ``<cache>/measurements/<task>/<variant>-<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "measurements"
        self.files = ChecksummedStore(self.root, CACHE_FORMAT)

    def load(self, task: Task, variant: str, key: str) -> tuple[CacheEntry | None, str | None]:
        """(entry, None) when usable; (None, why) when the entry exists but cannot be trusted; (None, None)
        when there is none. A damaged or tampered entry is deleted, so it is measured again."""
        entry, problem = self.files.load(task.id, variant, key, _entry)
        if problem is None:
            return entry, None
        name = self.files.path(task.id, variant, key).name
        return None, f"discarded the cached {variant} measurement {name}: {problem}; measuring it again"

    def store(self, task: Task, variant: str, key: str, runs: list[BenchRun], info: dict[str, Any]) -> bool:
        """Keep a clean measurement (every run ok) with how it was measured; False when not kept."""
        if not runs or any(run.status != "ok" for run in runs):
            return False  # only clean measurements are worth reusing
        content = {
            "key": key,
            "runs": [run.to_json() for run in runs],
            "info": {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "harness": __version__,
                "measure_code": measurement_code_hash(),
                "versions": package_versions(),
                "machine": machine_fingerprint(),
                "rounds": sum(1 for run in runs if run.round >= 0),
                "load": load_summary(runs),
                **info,
            },
        }
        self.files.store(task.id, variant, content)
        return True


def _entry(content: dict[str, Any]) -> CacheEntry:
    return CacheEntry([BenchRun(**run) for run in content["runs"]], content["info"])


def load_summary(runs: list[BenchRun]) -> dict[str, Any]:
    """Host load over some runs: how many were loaded, the highest load average and others' CPU share."""
    loads = [run.host.get("before", {}).get("loadavg_1m") for run in runs]
    shares = [run.host.get("during", {}).get("others_cpu_share") for run in runs]
    return {
        "loaded_runs": sum(1 for run in runs if run.host.get("loaded")),
        "runs": len(runs),
        "loadavg_1m_max": max((x for x in loads if x is not None), default=None),
        "others_cpu_share_max": max((x for x in shares if x is not None), default=None),
    }
