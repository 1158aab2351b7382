"""Disk limits for agents: a watchdog on what an agent adds to its working copy and logs, and log caps.

The watchdog works the same for every backend (it reads the host side of the working copy, which the
docker backend bind-mounts): a thread measures the watched paths every few seconds, and the command
runner asks it whether to stop (``check``). Logs are capped after the run, in place and streaming: the
head and the tail are kept, with a line saying how much was cut between them.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

DISK_LIMIT = "disk_limit"
LOG_CAP_BYTES = 10 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``512m``, ``20g`` or ``1.5G`` (binary units); ValueError otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?", text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 512m or 20g")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def tree_size(paths: Iterable[Path]) -> int:
    """Bytes the paths hold: each file counts its larger of apparent and allocated size (a sparse file
    costs the harness's git its apparent size), each inode once, symbolic links not followed. A folder
    the agent made unreadable is made readable again first, so nothing hides from the count."""
    seen: set[tuple[int, int]] = set()
    total = 0
    todo = [p for p in paths]
    while todo:
        path = todo.pop()
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        total += max(info.st_size, info.st_blocks * 512) if not stat.S_ISDIR(info.st_mode) else 0
        if not stat.S_ISDIR(info.st_mode):
            continue
        try:
            entries = os.listdir(path)
        except PermissionError:
            with contextlib.suppress(OSError):
                os.chmod(path, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)
            try:
                entries = os.listdir(path)
            except OSError:
                continue
        except OSError:
            continue
        todo.extend(Path(path, name) for name in entries)
    return total


class DiskWatchdog:
    """Measures what the watched paths grow by, in a thread, while a command runs.

    ``check()`` returns ``"disk_limit"`` once the growth passed ``limit_bytes`` (None: no limit, the
    watchdog never stops anything). Use as a context manager around the run.
    """

    def __init__(self, paths: Iterable[Path], limit_bytes: int | None, every_s: float = 2.0) -> None:
        self.paths = list(paths)
        self.limit_bytes = limit_bytes
        self.every_s = every_s
        self.start_bytes = 0
        self.grown_bytes = 0
        self.exceeded = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DiskWatchdog:
        if self.limit_bytes is not None:
            self.start_bytes = tree_size(self.paths)
            self._thread = threading.Thread(target=self._watch, name="isobench-disk-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def measure(self) -> int:
        """Measure once now; returns (and records) the growth since the start."""
        self.grown_bytes = max(self.grown_bytes, tree_size(self.paths) - self.start_bytes)
        if self.limit_bytes is not None and self.grown_bytes > self.limit_bytes:
            self.exceeded = True
        return self.grown_bytes

    def _watch(self) -> None:
        while not self._done.wait(self.every_s):
            self.measure()
            if self.exceeded:
                return

    def check(self) -> str | None:
        """The reason to stop the command now, or None."""
        return DISK_LIMIT if self.exceeded else None


def cap_log(path: Path, cap_bytes: int = LOG_CAP_BYTES) -> int:
    """Keep at most ``cap_bytes`` of a log: its head, a line saying how much was cut, its tail. In place
    and streaming (the file is never read whole). Returns the bytes cut (0: the log was within the cap)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if size <= cap_bytes:
        return 0
    head = tail = max(0, cap_bytes - 200) // 2  # 200: room for the marker line, so the cap holds
    with path.open("r+b") as handle:
        # Cut at line ends where there is one near the cut (this only shortens head and tail).
        handle.seek(max(0, head - 4096))
        before = handle.read(head - max(0, head - 4096))
        if (newline := before.rfind(b"\n")) >= 0:
            head = max(0, head - 4096) + newline + 1
        handle.seek(size - tail)
        partial = handle.read(4096)
        if (newline := partial.find(b"\n")) >= 0:
            tail -= newline + 1
        cut = size - head - tail
        marker = f"\n[isobench: {cut} bytes of this log cut here; its first and last part are kept]\n"
        marker_bytes = marker.encode()
        if cut <= len(marker_bytes):  # the tail is copied forward over the cut: it must not overlap
            return 0
        source, target = size - tail, head
        handle.seek(target)
        handle.write(marker_bytes)
        target += len(marker_bytes)
        while source < size:
            handle.seek(source)
            chunk = handle.read(min(1024 * 1024, size - source))
            handle.seek(target)
            handle.write(chunk)
            source += len(chunk)
            target += len(chunk)
        handle.truncate(target)
    return cut
