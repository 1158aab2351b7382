"""How busy the host is around a benchmark run: load average and other processes' CPU, from /proc.

A benchmark measured while something else burns the CPUs (or shares the GPUs) reads slower than it
is. Each run records a sample taken just before it starts and a summary of the time it ran; a run on a
loaded host is flagged so the outcome (and the log) says so. GPU figures come from NVML through
``pynvml`` when it is importable and a GPU answers; otherwise they are left out.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from typing import Any

# Other processes using more than this share of the machine's CPU time (or a 1-minute load average
# above this share of the CPUs) make the host "loaded".
LOADED_SHARE = 0.25
PRE_SAMPLE_S = 0.1


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_and_total() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from the first line of /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [float(value) for value in fields[1:]]
    hz = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (not guest: counted in user)
    return (total - idle) / hz, total / hz


def _own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the benchmark, under the local backend)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def gpu_state() -> list[dict[str, Any]] | None:
    """Per visible GPU: utilisation, SM clock, memory used and processes, via NVML; None without it."""
    try:
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    gpus: list[dict[str, Any]] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            gpus.append(
                {
                    "index": index,
                    "util_pct": int(util.gpu),
                    "sm_clock_mhz": int(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
                    "memory_used_mib": int(memory.used) // (1024 * 1024),
                    "processes": len(procs),
                }
            )
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


def sample_before(window_s: float = PRE_SAMPLE_S) -> dict[str, Any]:
    """Load just before a run: load average and other processes' CPU share over a short window."""
    first, own_first = _busy_and_total(), _own_cpu_s()
    time.sleep(window_s)
    second, own_second = _busy_and_total(), _own_cpu_s()
    sample: dict[str, Any] = {"loadavg_1m": load_average(), "cpus": cpu_count()}
    sample["others_cpu_share"] = _others_share(first, second, own_second - own_first)
    gpus = gpu_state()
    if gpus is not None:
        sample["gpus"] = gpus
    return sample


def _others_share(
    first: tuple[float, float] | None, second: tuple[float, float] | None, own_cpu_s: float
) -> float | None:
    """Share (0..1) of the machine's CPU time used by processes other than ours between two readings."""
    if first is None or second is None:
        return None
    busy = second[0] - first[0]
    total = second[1] - first[1]
    if total <= 0:
        return None
    return round(min(1.0, max(0.0, (busy - own_cpu_s) / total)), 3)


class LoadMonitor:
    """Samples the host load while a run is in progress; ``stop()`` returns the summary.

    Other processes' CPU share during the run is the machine's busy CPU time minus this process's and
    its reaped children's (the benchmark's, under the local backend), over the machine's total. Under
    a container backend the benchmark's own CPU is not among our children, so the share includes it:
    an upper bound. The load average is the highest seen at ``interval_s`` steps.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._peak_load: float | None = load_average()
        self._thread = threading.Thread(target=self._watch, name="isobench-load", daemon=True)
        self._first = _busy_and_total()
        self._own_first = _own_cpu_s()

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            load = load_average()
            if load is not None and (self._peak_load is None or load > self._peak_load):
                self._peak_load = load

    def summary(self) -> dict[str, Any]:
        own = _own_cpu_s() - self._own_first
        return {
            "loadavg_1m_max": self._peak_load,
            "others_cpu_share": _others_share(self._first, _busy_and_total(), own),
        }


def loaded(
    before: dict[str, Any], during: dict[str, Any] | None = None, gpus: str | None = None
) -> str | None:
    """Why the host counts as loaded for a run (None when it does not); ``gpus``: the run's GPU ids."""
    cpus = int(before.get("cpus") or cpu_count())
    reasons: list[str] = []
    for where, sample in (("before", before), ("during", during or {})):
        share = sample.get("others_cpu_share")
        if share is not None and share > LOADED_SHARE:
            reasons.append(f"other processes used {share * 100:.0f} % of the CPUs {where} the run")
    load = before.get("loadavg_1m")
    if load is not None and load > cpus * (1.0 + LOADED_SHARE):
        reasons.append(f"load average {load:g} on {cpus} CPU(s)")
    leased = {part.strip() for part in gpus.split(",")} if gpus else None
    busy_gpus = [
        g["index"]
        for g in before.get("gpus") or []
        if g.get("processes") and (leased is None or str(g["index"]) in leased)
    ]
    if busy_gpus:
        reasons.append(f"other processes on GPU(s) {busy_gpus}")
    return "; ".join(reasons) or None


def visible_gpus(env: dict[str, str]) -> str | None:
    """The GPUs a run may use, as the environment given to it says (CUDA_VISIBLE_DEVICES or NVIDIA's)."""
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if name in env:
            return env[name]
    return os.environ.get("CUDA_VISIBLE_DEVICES")


__all__ = ["LoadMonitor", "gpu_state", "loaded", "sample_before", "visible_gpus"]
