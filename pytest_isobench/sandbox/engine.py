"""The Docker engine: connecting, labelling what the harness creates, and removing it again.

Everything the docker backend creates carries ``isobench.owner`` and ``isobench.run`` labels, so it can
be found and removed by label: at the end of each task, at interpreter exit (also after failures and
Ctrl-C), and by ``python -m pytest_isobench cleanup`` after a run that was killed outright. The
``docker`` SDK is imported lazily: loading the plugin must not import it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from .base import SandboxError

OWNER_LABEL = "isobench.owner"
OWNER = "pytest-isobench"
RUN_LABEL = "isobench.run"
TASK_LABEL = "isobench.task"
ROLE_LABEL = "isobench.role"
HOST_LABEL = "isobench.host"
PID_LABEL = "isobench.pid"

FIX_HINT = (
    "start the engine (dockerd, or Docker Desktop), let this user reach it (the docker group, or"
    " DOCKER_HOST pointing at the engine), check with `docker info`; or use --isobench-backend=local"
)


class EngineUnavailable(SandboxError):
    """The Docker engine cannot be reached; the message says how to fix it."""


_clients: dict[tuple[int, int], Any] = {}
_lock = threading.Lock()


def client() -> Any:
    """A ``docker.DockerClient`` for this process (one per pid and SDK import), checked with a ping."""
    with _lock:
        try:
            # By name: the repository's docker/ folder (Dockerfile templates) must not shadow the SDK.
            docker: Any = importlib.import_module("docker")
        except ImportError as exc:  # pragma: no cover - docker is a dependency
            raise EngineUnavailable(f"the docker backend needs the docker SDK ({exc})") from None
        # Per process, and per import of the SDK: a re-imported SDK (pytester restores sys.modules)
        # raises its own exception classes, which callers catch by importing it again.
        key = (os.getpid(), id(docker))
        if key in _clients:
            return _clients[key]
        problem = _socket_problem()
        if problem is not None:
            raise EngineUnavailable(
                f"the docker backend cannot reach the Docker engine ({problem}); {FIX_HINT}"
            )
        found = None
        try:
            found = docker.from_env(timeout=120)
            found.ping()
        except Exception as exc:
            if found is not None:
                with contextlib.suppress(Exception):
                    found.close()
            raise EngineUnavailable(
                f"the docker backend cannot reach the Docker engine ({type(exc).__name__}: {exc}); {FIX_HINT}"
            ) from None
        _clients[key] = found
        return found


def _socket_problem() -> str | None:
    """Why the engine's unix socket does not answer (checked first: the SDK leaks a socket then)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(10)
        try:
            probe.connect(path)
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
    return None


def engine_problem() -> str | None:
    """Why the Docker engine cannot be used here, or None when it can."""
    try:
        client()
    except EngineUnavailable as exc:
        return str(exc)
    return None


def labels(run_id: str, task_id: str, role: str) -> dict[str, str]:
    """The labels of every container the harness creates (cleanup and ``docker ps`` filter on them)."""
    return {
        OWNER_LABEL: OWNER,
        RUN_LABEL: run_id,
        TASK_LABEL: task_id,
        ROLE_LABEL: role,
        HOST_LABEL: socket.gethostname(),
        PID_LABEL: str(os.getpid()),
    }


# -- containers this process owns: removed at interpreter exit whatever happened -------------------

_live: set[str] = set()
_atexit_registered = False


def track(container_id: str) -> None:
    """Remember a container so that interpreter exit removes it if its sandbox did not."""
    global _atexit_registered
    with _lock:
        _live.add(container_id)
        if not _atexit_registered:
            atexit.register(remove_tracked)
            _stop_on_sigterm()
            _atexit_registered = True


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) then unwinds like Ctrl-C, so containers are removed too.

    Only where nobody else handles SIGTERM, and only from the main thread (where handlers live).
    """
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _sigterm)


def untrack(container_id: str) -> None:
    with _lock:
        _live.discard(container_id)


def remove_container(container_id: str) -> None:
    """Force-remove one container (and its anonymous volumes); a missing container is fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        client().api.remove_container(container_id, force=True, v=True)
    untrack(container_id)


def remove_tracked() -> None:
    """Remove every container this process created and still holds (atexit; also after Ctrl-C)."""
    with _lock:
        pending = sorted(_live)
    for container_id in pending:
        with contextlib.suppress(Exception):
            remove_container(container_id)
    # Also those the engine finished creating after an interrupted request (their id never came back).
    mine = [f"{OWNER_LABEL}={OWNER}", f"{PID_LABEL}={os.getpid()}", f"{HOST_LABEL}={socket.gethostname()}"]
    with contextlib.suppress(Exception):
        for item in client().api.containers(all=True, filters={"label": mine}):
            remove_container(item["Id"])


# -- cleanup by label ---------------------------------------------------------------------------


@dataclass
class Leftovers:
    """What a cleanup found (and removed unless it was a dry run)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def total(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.volumes)


def _owner_alive(item_labels: dict[str, str]) -> bool:
    """Whether the process that created something is still running on this host."""
    if item_labels.get(HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(item_labels.get(PID_LABEL, ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup(run_id: str | None = None, *, dry_run: bool = False, force: bool = False) -> Leftovers:
    """Remove the project's containers, networks and volumes (one run's, or every run's).

    Without ``force``, things whose creating process still runs on this host are left alone: a
    concurrent pytest session keeps its containers.
    """
    import docker.errors

    api = client().api
    wanted = [f"{OWNER_LABEL}={OWNER}"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])
    found = Leftovers()
    for item in api.containers(all=True, filters={"label": wanted}):
        name = (item.get("Names") or [item["Id"][:12]])[0].lstrip("/")
        if not force and _owner_alive(item.get("Labels") or {}):
            found.skipped.append(f"container {name} (its pytest process still runs)")
            continue
        found.containers.append(name)
        if not dry_run:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(item["Id"], force=True, v=True)
            untrack(item["Id"])
    for net in api.networks(filters={"label": wanted}):
        if not force and _owner_alive(net.get("Labels") or {}):
            found.skipped.append(f"network {net['Name']} (its pytest process still runs)")
            continue
        found.networks.append(net["Name"])
        if not dry_run:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_network(net["Id"])
    for volume in api.volumes(filters={"label": wanted}).get("Volumes") or []:
        if not force and _owner_alive(volume.get("Labels") or {}):
            found.skipped.append(f"volume {volume['Name']} (its pytest process still runs)")
            continue
        found.volumes.append(volume["Name"])
        if not dry_run:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_volume(volume["Name"], force=True)
    return found


def count_containers(run_id: str | None = None) -> int:
    """How many of the project's containers exist (all states), optionally of one run."""
    wanted = [f"{OWNER_LABEL}={OWNER}"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])
    return len(client().api.containers(all=True, filters={"label": wanted}))


def cleanup_main(run_id: str | None, *, dry_run: bool = False, force: bool = False) -> int:
    """``python -m pytest_isobench cleanup``: remove leftovers and say what went (exit status 0)."""
    found = cleanup(run_id, dry_run=dry_run, force=force)
    verb = "would remove" if dry_run else "removed"
    for kind, names in (
        ("container", found.containers),
        ("network", found.networks),
        ("volume", found.volumes),
    ):
        for name in names:
            print(f"{verb} {kind} {name}")
    for item in found.skipped:
        print(f"kept {item} (--force removes it)")
    print(
        f"{verb} {len(found.containers)} container(s), {len(found.networks)} network(s),"
        f" {len(found.volumes)} volume(s)" + (f" of run {run_id}" if run_id else "")
    )
    return 0
