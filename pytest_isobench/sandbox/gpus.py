"""GPU leases: which GPUs a task may use, disjoint across pytest-xdist workers and sessions on a host.

Each GPU id has a lock file in a host-wide folder; a lease holds an exclusive ``flock`` on each of its
GPUs. The kernel drops the locks when the holder exits, so a crashed or killed worker never leaves a
GPU booked. A lease takes all its GPUs or none (it never holds some while waiting for others), so two
tasks that each need two of three GPUs cannot deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOCK_DIR_VAR = "ISOBENCH_GPU_LOCK_DIR"

# Set by options.resolve() for the docker backend (--isobench-gpus); None: ask the machine.
_configured: tuple[str, ...] | None = None


class GpuLeaseTimeout(RuntimeError):
    """No lease could be had in time (other tasks hold the GPUs)."""


def configure(ids: Sequence[str] | None) -> None:
    """Record the usable GPU ids for this process (``--isobench-gpus``); None restores autodetection."""
    global _configured
    _configured = tuple(ids) if ids is not None else None


def parse_ids(text: str) -> tuple[str, ...]:
    """``0,1,3`` → ("0", "1", "3"); ``none`` or empty → (); ids may be names or UUIDs, not repeated."""
    if text.strip().lower() in ("", "none"):
        return ()
    ids = tuple(part.strip() for part in text.split(","))
    if any(not part or not re.fullmatch(r"[A-Za-z0-9:._-]+", part) for part in ids):
        raise ValueError(f"{text!r} is not a comma-separated list of GPU ids (e.g. 0,1,2)")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{text!r} names a GPU twice")
    return ids


def usable_ids(count_gpus: Callable[[], int]) -> tuple[str, ...]:
    """The GPU ids tasks may lease: the configured ones, else 0..n-1 for what the machine has."""
    if _configured is not None:
        return _configured
    return tuple(str(i) for i in range(count_gpus()))


def default_lock_dir() -> Path:
    """Host-wide, so separate pytest sessions on one machine do not book the same GPU either."""
    return Path(os.environ.get(LOCK_DIR_VAR) or Path(tempfile.gettempdir()) / "isobench-gpu-locks")


@dataclass
class GpuLease:
    """GPUs held exclusively until ``release()`` (or until the process ends)."""

    ids: tuple[str, ...]
    _handles: list[IO[str]] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for handle in self._handles:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self._handles.clear()

    def __enter__(self) -> GpuLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_file(lock_dir: Path, gpu: str) -> IO[str]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        lock_dir.chmod(0o1777)  # shared by every user on the host, like /tmp
    path = lock_dir / f"gpu-{gpu.replace('/', '_')}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    return os.fdopen(fd, "r+", encoding="utf-8")


def try_lease(ids: Sequence[str], count: int, lock_dir: Path, holder: str = "") -> GpuLease | None:
    """Take ``count`` free GPUs from ``ids`` (first free first) right now, or None (taking none)."""
    if count <= 0:
        return GpuLease(())
    taken: list[tuple[str, IO[str]]] = []
    for gpu in ids:
        handle = _lock_file(lock_dir, gpu)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {holder}\n")
        handle.flush()
        taken.append((gpu, handle))
        if len(taken) == count:
            return GpuLease(tuple(g for g, _ in taken), [h for _, h in taken])
    GpuLease((), [h for _, h in taken]).release()
    return None


def lease(
    ids: Sequence[str],
    count: int,
    lock_dir: Path | None = None,
    *,
    holder: str = "",
    timeout_s: float | None = None,
    poll_s: float = 0.2,
    on_wait: Callable[[str], None] | None = None,
) -> GpuLease:
    """Wait until ``count`` GPUs of ``ids`` are free and hold them; ValueError when there are too few."""
    if count > len(ids):
        raise ValueError(f"{count} GPU(s) needed, only {len(ids)} usable ({', '.join(ids) or 'none'})")
    folder = lock_dir or default_lock_dir()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    told = False
    while True:
        got = try_lease(ids, count, folder, holder)
        if got is not None:
            return got
        if deadline is not None and time.monotonic() >= deadline:
            raise GpuLeaseTimeout(f"no {count} of GPUs {', '.join(ids)} free within {timeout_s:g} s")
        if on_wait is not None and not told:
            on_wait(f"waiting for {count} free GPU(s) of {', '.join(ids)}")
            told = True
        time.sleep(poll_s)
