"""Run one command as a child subreaper, so that nothing it starts outlives it.

    python -I -S supervise.py HARNESS_PID -- ARGV...

The harness starts every long-lived command (an agent, a benchmark, a benchmark's server) under this
small supervisor. On Linux it is a child subreaper (``PR_SET_CHILD_SUBREAPER``): a daemon the command
leaves behind, whatever it does to hide (``setsid``, a double fork, ``env -i``), is re-parented to the
supervisor instead of to init, so it stays a descendant the supervisor can find. The supervisor ends
all of them

- when the command exits (stragglers go with it),
- when it gets SIGTERM, SIGINT or SIGHUP (the harness stops the stage: time limit, Ctrl-C),
- when the harness process dies, even by SIGKILL (``PR_SET_PDEATHSIG``);
- when the supervisor itself is killed by SIGKILL (a Ray worker that dies takes its children with it
  that way): a watchdog child, which holds the read end of a pipe only the supervisor writes to, sees
  the pipe close and kills every process that carries the command's token (``ISOBENCH_PROCESS_TOKEN``).

Its exit status is the command's (a command killed by signal N makes the supervisor die by N too).
Elsewhere (no ``/proc``, no ``prctl``) it still runs the command and stops what it can see.

This file is run as a script by path, with the standard library only: it must start fast and must not
import the plugin.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# The harness's death arrives as SIGHUP; a SIGHUP while the harness is still our parent (the thread that
# started us ended) is ignored.
DEATH_SIGNAL = signal.SIGHUP
GRACE_S = 2.0
KILL_ROUNDS_S = 5.0
TOKEN_VAR = "ISOBENCH_PROCESS_TOKEN"  # reaper.TOKEN_VAR (this script imports nothing of the plugin)


def prctl(option: int, value: int) -> bool:
    """Linux ``prctl(option, value)``; False where it does not exist or fails."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks since boot) from ``/proc/PID/stat``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def process_table() -> dict[int, tuple[str, int, int]]:
    """Every visible process: pid -> (state, parent pid, start time)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    for name in names:
        if name.isdigit() and (info := stat(int(name))) is not None:
            table[int(name)] = info
    return table


def descendants(root: int, table: dict[int, tuple[str, int, int]] | None = None) -> list[int]:
    """Pids of every process below ``root`` (children, their children, ...), zombies included."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def reap() -> None:
    """Collect every exited child (ours, or an orphan re-parented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_descendants(root: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM every descendant of ``root``, wait up to ``grace_s``, then SIGKILL until none is left."""
    for sig, seconds in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_ROUNDS_S)):
        deadline = time.monotonic() + seconds
        signalled: set[int] = set()
        while True:
            if root == os.getpid():
                reap()
            table = process_table()
            below = descendants(root, table)
            live = [p for p in below if table[p][0] not in ("Z", "X")]
            if not below or (not live and root != os.getpid()):
                return
            for pid in live:
                # SIGTERM once each (a process may handle it and take its time); SIGKILL every round,
                # so that what forks while we kill goes too.
                if sig == signal.SIGKILL or pid not in signalled:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
                    signalled.add(pid)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)


def with_token(token: str) -> list[int]:
    """Pids of the processes whose environment carries ``TOKEN_VAR=token``, this one excepted."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for pid in process_table():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def start_watchdog(token: str) -> tuple[int, int]:
    """Fork the watchdog; (its pid, the pipe's write end, which this process keeps open while it lives).

    The watchdog ignores the signals that stop a stage (the supervisor ends it), waits for the pipe to
    close, then kills every process with the token until none is left.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid != 0:
        os.close(read_end)
        return pid, write_end
    try:
        os.close(write_end)
        for sig in (signal.SIGTERM, signal.SIGINT, DEATH_SIGNAL, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # hold no pipe of the harness open
            os.dup2(null, fd)
        while True:
            try:
                if not os.read(read_end, 1):
                    break
            except InterruptedError:
                continue
        deadline = time.monotonic() + KILL_ROUNDS_S
        while (left := with_token(token)) and time.monotonic() < deadline:
            for target in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(target, signal.SIGKILL)
            time.sleep(0.02)
    finally:
        os._exit(0)


def stop_watchdog(pid: int) -> None:
    """The supervisor ends normally and does its own cleaning: the watchdog goes first, quietly."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


class Stop(Exception):
    """The stage is being stopped (or the harness died)."""


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervise.py HARNESS_PID -- ARGV...", file=sys.stderr)
        return 2
    harness = int(argv[1])
    command = argv[3:]
    prctl(PR_SET_CHILD_SUBREAPER, 1)

    stopping = [False]

    def on_stop(signum: int, _frame: object) -> None:
        if stopping[0] or (signum == DEATH_SIGNAL and os.getppid() == harness):
            return
        stopping[0] = True
        raise Stop

    for sig in (signal.SIGTERM, signal.SIGINT, DEATH_SIGNAL):
        signal.signal(sig, on_stop)
    prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL)
    if os.getppid() != harness:  # the harness died before the line above
        return 128 + signal.SIGTERM
    token = os.environ.get(TOKEN_VAR)
    watchdog, pipe = start_watchdog(token) if token else (0, -1)
    child = 0
    status: int | None = None
    try:
        child = os.fork()
        if child == 0:
            if pipe >= 0:
                os.close(pipe)
            for sig in (signal.SIGTERM, signal.SIGINT, DEATH_SIGNAL, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            try:
                os.execvp(command[0], command)
            finally:
                os._exit(127)
        while status is None:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == child:
                status = wait_status
    except Stop:
        pass
    stopping[0] = True
    for sig in (signal.SIGTERM, signal.SIGINT, DEATH_SIGNAL):
        signal.signal(sig, signal.SIG_IGN)
    if watchdog:
        stop_watchdog(watchdog)
    end_descendants(os.getpid())
    if status is None:
        return 128 + signal.SIGTERM
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(number, signal.SIG_DFL)  # SIGKILL and SIGSTOP cannot be set
        os.kill(os.getpid(), number)
        return 128 + number
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
