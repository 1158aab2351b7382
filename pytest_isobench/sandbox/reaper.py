"""What keeps the local backend's processes from outliving the harness: SIGTERM handling and pid records.

- Every long-lived command runs under ``supervise.py`` (a child subreaper that ends the command's whole
  tree when the command ends, is stopped, or the harness dies).
- ``install`` (the plugin's configure) turns SIGTERM into KeyboardInterrupt, so a terminated pytest
  runs the same cleanup as Ctrl-C; ``uninstall`` restores the previous handler.
- While a supervised command runs, a small record (pid, start time, token) sits in
  ``<cache>/procs/``. If even the supervisor was killed, ``python -m pytest_isobench cleanup`` reads
  these records and ends what is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .supervise import descendants, process_table, stat

TOKEN_VAR = "ISOBENCH_PROCESS_TOKEN"
RECORDS = "procs"

# Nested installs (pytest inside pytest, as the plugin's own tests do) stack: uninstall undoes the last.
_installed: list[tuple[Path | None, bool, Any]] = []
_records_dir: list[Path | None] = [None]


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), which tells a pid's reuse apart."""
    info = stat(pid)
    return None if info is None else info[2]


def same_process(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is alive (not a zombie) and is the process that started at ``started``."""
    info = stat(pid)
    return info is not None and info[0] not in ("Z", "X") and info[2] == started


# -- SIGTERM -----------------------------------------------------------------------------------------


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


def install(records_dir: Path | None) -> None:
    """Handle SIGTERM like Ctrl-C and keep pid records under ``records_dir`` (None: no records)."""
    previous: Any = None
    main = threading.current_thread() is threading.main_thread()
    if main:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _installed.append((_records_dir[0], main, previous))
    _records_dir[0] = records_dir


def uninstall() -> None:
    """Undo the last ``install``: the SIGTERM handler and records folder before it are back."""
    if not _installed:
        return
    _records_dir[0], replaced, previous = _installed.pop()
    if replaced and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


# -- pid records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One supervised command, written while it runs."""

    path: Path | None
    pid: int
    token: str


def register(pid: int, token: str, kind: str) -> Record:
    """Write the record of a supervisor just started (nothing when no records folder is set)."""
    folder = _records_dir[0]
    if folder is None:
        return Record(None, pid, token)
    data = {
        "pid": pid,
        "start": start_time(pid),
        "token": token,
        "kind": kind,
        "owner": os.getpid(),
        "owner_start": start_time(os.getpid()),
        "boot_id": boot_id(),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{token}.json"
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    except OSError:
        return Record(None, pid, token)
    return Record(path, pid, token)


def unregister(record: Record) -> None:
    if record.path is not None:
        record.path.unlink(missing_ok=True)


def pids_with_token(token: str) -> list[int]:
    """Processes whose environment carries ``ISOBENCH_PROCESS_TOKEN=token``."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for pid in process_table():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def kill_all(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass
class Leftovers:
    """What ``cleanup_records`` found: killed process ids, records of live owners kept."""

    killed: list[int] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    records: int = 0


def cleanup_records(folder: Path, *, dry_run: bool = False, force: bool = False) -> Leftovers:
    """End the processes the records in ``folder`` name whose harness is gone (all of them with force)."""
    found = Leftovers()
    if not folder.is_dir():
        return found
    this_boot = boot_id()
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid, token = int(data["pid"]), str(data["token"])
        except (OSError, ValueError, KeyError, TypeError):
            if not dry_run:
                path.unlink(missing_ok=True)
            continue
        found.records += 1
        if data.get("boot_id") and data["boot_id"] != this_boot:  # from before a reboot: nothing is left
            if not dry_run:
                path.unlink(missing_ok=True)
            continue
        owner = data.get("owner")
        if not force and isinstance(owner, int) and same_process(owner, data.get("owner_start")):
            found.kept.append(f"{data.get('kind', 'process')} {pid} of pytest process {owner}")
            continue
        victims = set(pids_with_token(token))
        if same_process(pid, data.get("start")):
            victims.add(pid)
            victims.update(descendants(pid))
        victims.discard(os.getpid())
        found.killed.extend(sorted(victims))
        if dry_run:
            continue
        deadline = time.monotonic() + 5
        while victims and time.monotonic() < deadline:
            kill_all(sorted(victims))
            time.sleep(0.05)
            table = process_table()
            victims = {p for p in victims if p in table and table[p][0] not in ("Z", "X")}
            if same_process(pid, data.get("start")):
                victims.update(descendants(pid, table))
        path.unlink(missing_ok=True)
    return found


def cleanup_main(cache_dir: Path, *, dry_run: bool = False, force: bool = False) -> int:
    """The local half of ``python -m pytest_isobench cleanup``: say what was ended."""
    found = cleanup_records(cache_dir / RECORDS, dry_run=dry_run, force=force)
    verb = "would end" if dry_run else "ended"
    for pid in found.killed:
        print(f"{verb} local process {pid}")
    for item in found.kept:
        print(f"kept {item} (--force ends it)")
    folder = cache_dir / RECORDS
    print(f"{verb} {len(found.killed)} local process(es) from {found.records} record(s) in {folder}")
    return 0
