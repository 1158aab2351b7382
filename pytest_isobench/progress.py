"""Live progress: a line per stage and per benchmark round while a task runs, printed on the controller.

The pipeline reports through one callback, ``progress(message)`` (``pipeline.Progress``); this module
turns it into terminal lines. They are on by default and off with ``-q``. Every message is also logged
at INFO on the ``pytest_isobench`` logger, as before, so ``log_cli`` and the reports' log sections
keep them.

Single process (also ``-p no:xdist``): the line goes straight through pytest's terminal reporter,
with output capturing suspended for the write (what live logging does), so it shows while the task
runs, before its result.

pytest-xdist workers cannot print to the controller's terminal, and the only things they can send it
are the events xdist defines: test reports (every reporting plugin would count an extra one, and
junitxml and json-report would record it), warnings, and ``config.workeroutput``, which arrives only
when the worker finishes. So the channel is a file: a worker appends one JSON line per message to
``<run-dir>/progress.jsonl`` (one ``write`` on an ``O_APPEND`` descriptor, so lines of several workers
never interleave), and the controller reads what is new there, in a daemon thread that polls the file
and, in the main thread, just before pytest reports a task's result, so a task's lines always come
before its result line. The file stays in the run folder as the run's timeline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger("pytest_isobench")

PLUGIN_NAME = "isobench-progress"
FILE_NAME = "progress.jsonl"
POLL_S = 0.25

Progress = Callable[[str], None]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def format_line(task_id: str, message: str, *, worker: str | None = None, when: float | None = None) -> str:
    """``[gw0] isobench 15:04:05 vllm-ad8d696a: measuring agent, baseline, human: ...``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if when is None else when))
    prefix = f"[{worker}] " if worker else ""
    return f"{prefix}isobench {stamp} {task_id}: {message}"


def append_event(path: Path, task_id: str, message: str, worker: str | None) -> None:
    """Append one event as a JSON line in a single write (atomic among appenders on a local disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"time": time.time(), "worker": worker, "task": task_id, "message": message}
    data = (json.dumps(record, ensure_ascii=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class FileTail:
    """Reads the complete lines appended to a file since the last read (from ``start`` on)."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path, self.offset = path, start
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events


class ProgressPrinter:
    """The controller's side: writes progress lines through the terminal reporter.

    Under pytest-xdist it also follows the workers' progress file (``start``/``stop`` around the
    session, and a read before each result is reported).
    """

    def __init__(self, config: pytest.Config, run_dir: Path, *, distributed: bool) -> None:
        self.config = config
        self.path = run_dir / FILE_NAME
        self.distributed = distributed
        self._lock = threading.RLock()
        self._tail: FileTail | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing ----------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        with self._lock, self._capture_suspended():
            terminal.write_line(text)

    @contextlib.contextmanager
    def _capture_suspended(self) -> Iterator[None]:
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if capman is None or threading.current_thread() is not threading.main_thread():
            yield  # the controller under xdist runs no test: nothing is being captured there
            return
        with capman.global_and_fixture_disabled():
            yield

    # -- following the workers' file --------------------------------------------------------------

    def start(self) -> None:
        size = self.path.stat().st_size if self.path.is_file() else 0  # a resumed run's old lines stay
        self._tail = FileTail(self.path, size)
        self._thread = threading.Thread(target=self._follow, name="isobench-progress", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(POLL_S):
            self.drain()

    def drain(self) -> None:
        """Print what workers appended since the last read."""
        if self._tail is None:
            return
        with self._lock:
            for event in self._tail.read():
                self.write(
                    format_line(
                        str(event.get("task", "?")),
                        str(event.get("message", "")),
                        worker=event.get("worker") or None,
                        when=float(event.get("time") or time.time()),
                    )
                )

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        self.drain()
        self._tail = None

    # -- hooks (registered on the controller) -----------------------------------------------------

    def pytest_sessionstart(self) -> None:
        if self.distributed:
            self.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self) -> None:
        """Under xdist: a task's lines come before its result (the worker wrote them before it sent it)."""
        self.drain()

    def pytest_sessionfinish(self) -> None:
        self.stop()


def install(config: pytest.Config, run_dir: Path) -> None:
    """On the controller (or single process), unless ``-q``: register the printer."""
    if is_worker(config) or config.get_verbosity() < 0:
        return
    distributed = getattr(config.option, "dist", "no") != "no"
    config.pluginmanager.register(ProgressPrinter(config, run_dir, distributed=distributed), PLUGIN_NAME)


def uninstall(config: pytest.Config) -> None:
    printer = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if printer is not None:
        printer.stop()
        config.pluginmanager.unregister(printer)


def reporter(config: pytest.Config, run_dir: Path, task_id: str) -> Progress:
    """The ``progress(message)`` callback of one task in this process."""
    printer: ProgressPrinter | None = config.pluginmanager.get_plugin(PLUGIN_NAME)
    worker = os.environ.get("PYTEST_XDIST_WORKER") if is_worker(config) else None
    path = run_dir / FILE_NAME

    def progress(message: str) -> None:
        log.info("%s: %s", task_id, message)
        if worker is not None:
            with contextlib.suppress(OSError):  # progress lines never fail a task
                append_event(path, task_id, message, worker)
        elif printer is not None:
            printer.write(format_line(task_id, message))

    return progress
