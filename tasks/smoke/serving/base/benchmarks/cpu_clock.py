"""CPU-time measurement that does not swing with what else the machine runs.

Wall time measures the machine as much as the code: on a shared machine a benchmark waits for a core
whenever other processes want one, and identical code measures tens of percent apart from one run to
the next. The benchmarks here therefore report what the measured code costs in CPU time:

- ``ProcessTreeClock`` sums the kernel's CPU-time clocks of a set of processes: a root process, every
  process below it and, optionally, every other process of the root's session. Each clock covers all
  threads of its process, also those that exited, with nanosecond resolution; a process that appears
  between two readings counts in full, and children its members have reaped count too (at the
  kernel's tick resolution). The figures come from the kernel: work the measured code hands to a
  helper thread or process is counted, and a server measured from its client has no say in them
  (a benchmark that runs the measured code in its own process imports this module first, so that
  the clock functions it holds are the interpreter's own).
- Linux brings a thread's CPU clock up to date when the thread leaves its CPU and at the scheduler
  tick (every 4 ms at 250 Hz), not when another process reads it: a reading of a process whose thread
  is running on another CPU at that moment misses up to a tick of its work, which then shows in a
  later reading. A clock made with ``hold=True`` makes every reading exact: a process with a thread
  that may be on another CPU is stopped (SIGSTOP) until none of its threads is on a CPU, read and
  continued (SIGCONT). ``sharing_cpu`` moves the measured processes onto the CPU of the reader, so
  that they are off the CPU whenever it reads and nothing needs stopping, and so that the
  calibration loops (below) run on the core that did the measured work.
- A CPU second is not a fixed amount of work either: a core that shares its caches or its physical
  core with other busy processes gets less done in it. So each measured section is paired with a
  short, fixed calibration loop right before and after it, and its CPU time is reported in reference
  seconds: CPU seconds times the speed of the calibration loop at that moment relative to the
  reference machine. The speed changes within a fraction of a second on a busy machine, so a long
  section can be cut into slices of a few milliseconds of CPU time with a calibration between two
  slices (``CpuTimer(slice_s=...)``); that calibration does byte joining, UTF-8 decoding, slicing
  and dict updates, which a busy core slows down more like interpreted engine code than plain
  arithmetic.

The unit of every reported time is the calibration loop's CPU time on the reference machine
(``REFERENCE_LOOP_S``). Figures are comparable between runs on one machine, not across machines.
Linux only (``/proc`` and the per-process CPU clocks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping

# Bound at import, before a benchmark imports the code it measures.
_clock_gettime_ns = time.clock_gettime_ns
_thread_time_ns = time.thread_time_ns
_setitimer = signal.setitimer
_signal = signal.signal
_ITIMER_PROF = signal.ITIMER_PROF
_SIGPROF = signal.SIGPROF
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")

# CPU time of one calibration loop on the reference machine: the unit of every reported time.
REFERENCE_LOOP_S = 0.004
_CPUCLOCK_SCHED = 2  # Linux: a process-wide CPU clock counting all threads, live and exited
# How long a held reading waits for stopped processes to leave their CPUs before it reads anyway.
HOLD_WAIT_S = 0.2


def cpu_clock_id(pid: int) -> int:
    """The clock id of ``pid``'s process-wide CPU-time clock (what ``clock_getcpuclockid`` gives)."""
    return ((~pid) << 3) | _CPUCLOCK_SCHED


def process_cpu_ns(pid: int) -> int | None:
    """CPU time ``pid`` has used so far (all its threads), in ns; None if it is gone."""
    try:
        return _clock_gettime_ns(cpu_clock_id(pid))
    except OSError:
        return None


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` from the state on (state, ppid, pgrp, session, ...).

    ``pid`` may also be ``PID/task/TID`` (one thread) or ``thread-self``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _reaped_children_ns(pid: int) -> int | None:
    """CPU time of the children ``pid`` has waited for (cutime + cstime), in ns."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[13]) + int(fields[14])) * 1_000_000_000 // _TICKS_PER_S


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _maybe_on_a_cpu(pid: int, cpu: int | None) -> bool:
    """Whether a thread of ``pid`` is runnable (state R) on a CPU other than ``cpu`` (None: any CPU).

    A runnable thread whose CPU is the caller's, while the caller runs there, is waiting for it: its
    clock is up to date.
    """
    for tid in _threads(pid):
        fields = _stat(f"{pid}/task/{tid}")
        if fields is not None and fields[0] == "R" and (cpu is None or int(fields[36]) != cpu):
            return True
    return False


def _only_cpu() -> int | None:
    """The CPU this thread is pinned to, or None when it may run on several."""
    allowed = os.sched_getaffinity(0)
    return next(iter(allowed)) if len(allowed) == 1 else None


def current_cpu() -> int:
    """The CPU this thread runs on."""
    fields = _stat("thread-self")
    if fields is None:
        raise OSError("/proc/thread-self/stat cannot be read")
    return int(fields[36])


def _children(pid: int) -> list[int]:
    found = []
    for tid in _threads(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def _descendants(roots: Iterable[int]) -> set[int]:
    found: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(_children(pid))
    return found


def _session_members(sid: int) -> set[int]:
    members = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(name)
            if fields is not None and int(fields[3]) == sid:
                members.add(int(name))
    return members


def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 0 and pid not in found:
        found.add(pid)
        fields = _stat(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return found


class ProcessTreeClock:
    """The summed CPU time of ``roots``, their descendants and (with ``session``) their sessions.

    Unless a root is the calling process itself, the caller and its ancestors are never counted.
    ``refresh`` finds the current set of processes (it reads ``/proc``: call it outside the measured
    interval). ``read`` reads their CPU clocks, one system call each, so that a reading ends close to
    the moment it was asked for; ``read_new`` completes a reading with the processes that appeared
    since the last ``refresh`` and with the children the set has reaped. ``elapsed_ns`` is the CPU
    time used between two readings. With ``hold``, ``read`` first stops the processes that may be on
    another CPU (see the module's notes) and continues them after the reading.
    """

    def __init__(self, roots: Iterable[int], *, session: bool = False, hold: bool = False) -> None:
        self.roots = sorted(set(roots))
        if not self.roots:
            raise ValueError("ProcessTreeClock needs at least one process")
        self.session = session
        self.hold = hold
        self.pids: list[int] = list(self.roots)
        self.refresh()

    def refresh(self) -> None:
        me = os.getpid()
        members = _descendants(self.roots)
        if self.session:
            own_sid = os.getsid(0)
            for root in self.roots:
                try:
                    sid = os.getsid(root)
                except OSError:
                    continue
                if sid not in (0, 1, own_sid):
                    members |= _descendants(_session_members(sid))
        if me not in self.roots:
            members -= _ancestors(me)
            members -= _descendants([me])
        # The roots last: they do the work, so their clocks are read closest to the moment asked for.
        self.pids = sorted(members - set(self.roots)) + self.roots

    def read(self) -> dict[int, int]:
        if not self.hold:
            return self._read()
        me, cpu = os.getpid(), _only_cpu()
        stopped = []
        try:
            for pid in self.pids:
                if pid != me and _maybe_on_a_cpu(pid, cpu):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGSTOP)
                        stopped.append(pid)
            deadline = time.monotonic() + HOLD_WAIT_S
            while any(_maybe_on_a_cpu(pid, None) for pid in stopped) and time.monotonic() < deadline:
                pass
            return self._read()
        finally:
            for pid in stopped:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)

    def _read(self) -> dict[int, int]:
        reading = {}
        for pid in self.pids:
            value = process_cpu_ns(pid)
            if value is not None:
                reading[pid] = value
        return reading

    def read_new(self, reading: dict[int, int]) -> dict[int, int]:
        """Complete ``reading`` (from ``read``) with new processes and reaped children; refreshes."""
        self.refresh()
        for pid in self.pids:
            if pid not in reading:
                value = process_cpu_ns(pid)
                if value is not None:
                    reading[pid] = value
            reaped = _reaped_children_ns(pid)
            if reaped is not None:
                reading[-pid] = reaped  # negative keys: children that ``pid`` has waited for
        return reading

    def reading(self) -> dict[int, int]:
        """A complete reading for the start of a measured interval (the clocks read last)."""
        self.refresh()
        reaped = {-pid: ns for pid in self.pids if (ns := _reaped_children_ns(pid)) is not None}
        return {**reaped, **self.read()}

    @staticmethod
    def elapsed_ns(before: Mapping[int, int], after: Mapping[int, int]) -> int:
        """CPU time between two readings: each clock's advance, or all of it for a new process."""
        return sum(value - before.get(key, 0) for key, value in after.items())


@contextlib.contextmanager
def sharing_cpu(clock: ProcessTreeClock) -> Iterator[int]:
    """Run this thread, the threads it starts and every thread of ``clock``'s processes on one CPU.

    The CPU is the one this thread runs on. Processes and threads the measured ones start later
    inherit it. Yields the CPU; on leaving, every thread gets back the CPUs it was allowed before (new
    ones those of their process, new processes this thread's). Threads that cannot be moved (another
    user's) are left as they are.
    """
    cpu = current_cpu()
    own = os.sched_getaffinity(0)
    saved: dict[int, set[int]] = {}
    clock.refresh()
    for pid in clock.pids:
        for tid in _threads(pid):
            with contextlib.suppress(OSError):
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {cpu})
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, own)
        clock.refresh()
        for pid in clock.pids:
            for tid in _threads(pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, saved.get(tid, saved.get(pid, own)))


def calibration_loop_ns() -> int:
    """CPU time of a fixed piece of interpreter work, in ns of this thread's CPU clock."""
    start = _thread_time_ns()
    acc = 0
    for i in range(40_000):
        acc = (acc * 31 + i) % 1_000_003
    return _thread_time_ns() - start


def speed_factor() -> float:
    """Reference seconds per CPU second right now."""
    return REFERENCE_LOOP_S * 1e9 / max(1, calibration_loop_ns())


# The slice calibration's data: short byte strings, as a tokenizer's pieces are.
_PIECES = [bytes((j * 37 + k) % 256 for k in range(1 + j % 6)) for j in range(3000)]
# CPU time of one slice calibration on the reference machine, in reference seconds (so that it
# measures in the same unit as ``speed_factor``).
REFERENCE_SLICE_LOOP_S = 0.0011


def slice_calibration_ns() -> int:
    """CPU time of a short, fixed piece of string and container work, in ns of this thread's clock."""
    start = _thread_time_ns()
    counts: dict[str, int] = {}
    acc = 0
    for i in range(200):
        first = (i * 613) % 2800
        text = b"".join(_PIECES[first : first + 40]).decode("utf-8", "replace")
        counts[text[:3]] = counts.get(text[:3], 0) + len(text)
        acc += len([c for c in text[::4]])
    return _thread_time_ns() - start


def slice_speed_factor() -> float:
    """Reference seconds per CPU second right now, from the slice calibration."""
    return REFERENCE_SLICE_LOOP_S * 1e9 / max(1, slice_calibration_ns())


class CpuTimer:
    """Times sections of this process (and the processes it starts) in reference CPU seconds.

    Use one timer for successive sections: the calibration loop after one section is the one before
    the next. After each ``with timer:`` block, ``elapsed`` is the section's time in reference seconds
    and ``cpu_s`` its CPU time.

    With ``slice_s``, a section is cut into slices of about that much CPU time of this process (a
    profiling timer interrupts it; use it in the main thread), and the slice calibration runs
    before, between and after them: each slice counts at the mean speed measured right before and
    right after it, so a change of the machine's speed during the section is followed closely. The
    calibrations' own CPU time is not counted. CPU time of other processes the section starts counts
    at the section's mean speed. ``slices`` is the number of slices of the last section.
    """

    def __init__(self, slice_s: float | None = None) -> None:
        self.clock = ProcessTreeClock([os.getpid()])
        self.slice_s = slice_s
        self._factor: float | None = None
        self.cpu_s = self.factor = self.elapsed = 0.0
        self.slices = 0
        self._slicing = False
        self._pieces: list[int] = []
        self._factors: list[float] = []
        self._piece_start = 0

    def _measure_speed(self) -> float:
        return slice_speed_factor() if self.slice_s else speed_factor()

    def _own_ns(self) -> int:
        return process_cpu_ns(self.clock.roots[0]) or 0

    def _cut(self, signum: int, frame: object) -> None:
        if not self._slicing:
            return
        self._pieces.append(self._own_ns() - self._piece_start)
        self._factors.append(slice_speed_factor())
        self._piece_start = self._own_ns()
        _setitimer(_ITIMER_PROF, self.slice_s or 0)

    def __enter__(self) -> CpuTimer:
        if self._factor is None:
            self._factor = self._measure_speed()
        if self.slice_s:
            self._pieces, self._factors = [], [self._factor]
            self._previous_handler = _signal(_SIGPROF, self._cut)
        self._before = self.clock.reading()
        if self.slice_s:
            self._own_start = self._piece_start = self._own_ns()
            self._slicing = True
            _setitimer(_ITIMER_PROF, self.slice_s)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.slice_s:
            self._slicing = False
            _setitimer(_ITIMER_PROF, 0)
            own_end = self._own_ns()
            self._pieces.append(own_end - self._piece_start)
        after = self.clock.read_new(self.clock.read())
        total_ns = ProcessTreeClock.elapsed_ns(self._before, after)
        factor_after = self._measure_speed()
        assert self._factor is not None
        self.factor = (self._factor + factor_after) / 2
        self._factor = factor_after
        if not self.slice_s:
            self.cpu_s = total_ns / 1e9
            self.elapsed = self.cpu_s * self.factor
            return
        _signal(_SIGPROF, self._previous_handler)
        factors = [*self._factors, factor_after]
        pieces = self._pieces
        others_ns = max(0, total_ns - (own_end - self._own_start))
        weighted = sum(ns * (factors[i] + factors[i + 1]) / 2 for i, ns in enumerate(pieces))
        self.slices = len(pieces)
        self.cpu_s = (sum(pieces) + others_ns) / 1e9
        self.elapsed = (weighted + others_ns * self.factor) / 1e9
