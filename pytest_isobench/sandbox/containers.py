"""One long-lived container (``sleep infinity`` under an init) and commands executed in it.

Commands run through ``docker exec`` with a hard time limit. Every exec carries a unique token in its
environment (as ``procs.py`` does on the host), so the harness can find and kill all of its processes
inside the container, also those that left the process group or were re-parented; the container's
init reaps them. Output is streamed to files on the host by a reader thread, so a command that prints
nothing for hours does not trip a socket timeout.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from . import engine
from .base import SandboxError
from .procs import TOKEN_VAR, Process

ROOT = "0:0"
SPOOL_BYTES = 64 * 2**20  # a larger copy in or out goes through a temporary file, not memory
log = logging.getLogger("pytest_isobench")
# `sig SIGNAL`: send SIGNAL (a name, or 0 to test) to every process carrying the token in $tok;
# true when it found one. It reads /proc/PID/environ, so it must run as the processes' own user.
_SIG = (
    'sig() { found=""; for d in /proc/[0-9]*; do'
    f' if grep -qzxF "{TOKEN_VAR}=$tok" "$d/environ" 2>/dev/null; then'
    ' kill "-$1" "${d#/proc/}" 2>/dev/null && found="$found ${d#/proc/}"; fi; done;'
    ' [ -n "$found" ] && echo "$found"; [ -n "$found" ]; }'
)
_SIGNAL_TOKEN = f'tok="$1"; {_SIG}; sig "$2"; exit 0'
# Runs a command with the token in its environment (not in the wrapper's own), then stops whatever
# it left behind, so a finished command costs one exec and leaves nothing running.
_WRAPPER = (
    f'tok="$1"; {TOKEN_VAR}="$tok" /bin/sh -c "$2" < "${{3:-/dev/null}}"; rc=$?; {_SIG};'
    " if sig TERM >/dev/null; then i=0; while [ $i -lt 20 ] && sig 0 >/dev/null; do sleep 0.1;"
    " i=$((i+1)); done; sig KILL >/dev/null; fi; exit $rc"
)


# Asks a URL from inside a container (whose network the harness may not reach): exit 0 on HTTP 200.
_PROBE_PY = (
    "import sys, urllib.request\n"
    "try:\n"
    "    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200 else 1)\n"
    "except Exception:\n"
    "    sys.exit(1)\n"
)
_PROBE = (
    'for py in python3 python; do command -v "$py" >/dev/null && exec "$py" -c "$1" "$2"; done;'
    ' command -v curl >/dev/null && exec curl -fsS -o /dev/null --max-time 5 "$2";'
    ' exec wget -q -O /dev/null -T 5 "$2"'
)


def wrapped(command: str, token: str, stdin_file: str | None = None) -> list[str]:
    """The argv that runs ``command`` under the token wrapper (stdin from a file, else /dev/null)."""
    return ["/bin/sh", "-c", _WRAPPER, "isobench", token, command, *([stdin_file] if stdin_file else [])]


class Container:
    """A container the harness owns: created labelled, tracked for removal, removed by ``remove``."""

    def __init__(
        self, image: str, *, name: str, user: str, labels: Mapping[str, str], **options: Any
    ) -> None:
        import docker.errors

        self.user = user
        self.name = name
        api = engine.client().api
        host_config = api.create_host_config(init=True, **options.pop("host_config", {}))
        try:
            created = api.create_container(
                image,
                command=["sleep", "infinity"],
                name=name,
                # The init runs as root: with no-new-privileges, root execs keep their capabilities
                # only then. Every exec names its user; the default one is ``user``.
                user=ROOT,
                labels=dict(labels),
                host_config=host_config,
                **options,
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"image {image} is missing (see docker/README.md)") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot create container {name}: {exc.explanation or exc}") from None
        except BaseException:  # Ctrl-C mid-request: the engine may still create it; remove by name
            _remove_late(api, name)
            raise
        self.id: str = created["Id"]
        engine.track(self.id)
        try:
            api.start(self.id)
        except docker.errors.APIError as exc:
            engine.remove_container(self.id)
            raise SandboxError(f"cannot start container {name}: {exc.explanation or exc}") from None

    @property
    def api(self) -> Any:
        return engine.client().api

    def running(self) -> bool:
        return bool(self.api.inspect_container(self.id)["State"]["Running"])

    def restart(self) -> None:
        """Kill every process at once (SIGKILL to the whole container), then start it again."""
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            self.api.kill(self.id)
        deadline = time.monotonic() + 30
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.api.start(self.id)

    def remove(self) -> None:
        engine.remove_container(self.id)

    # -- commands ---------------------------------------------------------------------------

    def _exec_socket(
        self, argv: Sequence[str], *, user: str, env: Mapping[str, str], workdir: str | None
    ) -> tuple[str, Any]:
        exec_id = self.api.exec_create(
            self.id, list(argv), user=user, environment=dict(env), workdir=workdir, stdin=False
        )["Id"]
        sock = self.api.exec_start(exec_id, socket=True)
        for candidate in (sock, getattr(sock, "_sock", None)):
            if candidate is not None and hasattr(candidate, "settimeout"):
                candidate.settimeout(None)  # a quiet command is not a dead connection
        return exec_id, sock

    def capture(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        timeout_s: float = 600,
    ) -> tuple[int, bytes, bytes]:
        """Run a short harness command to completion; (exit code, stdout, stderr) in memory."""
        out, err = io.BytesIO(), io.BytesIO()
        token = uuid.uuid4().hex
        code, timed_out, _ = self.stream(
            argv,
            token=token,
            user=user or self.user,
            env={**(env or {}), TOKEN_VAR: token},
            workdir=workdir,
            timeout_s=timeout_s,
            out=out,
            err=err,
        )
        if timed_out or code is None:
            raise SandboxError(f"`{' '.join(argv)[:200]}` in container {self.name} did not finish")
        return code, out.getvalue(), err.getvalue()

    def run_command(
        self,
        command: str,
        *,
        user: str,
        env: Mapping[str, str],
        workdir: str,
        timeout_s: float,
        out: IO[bytes],
        err: IO[bytes],
        stdin_file: str | None = None,
        on_timeout: Callable[[str], None] | None = None,
        stop_check: Callable[[], str | None] | None = None,
    ) -> tuple[int | None, bool, float]:
        """Run a shell command under the token wrapper; see ``stream``."""
        token = uuid.uuid4().hex
        return self.stream(
            wrapped(command, token, stdin_file),
            token=token,
            user=user,
            env=env,
            workdir=workdir,
            timeout_s=timeout_s,
            out=out,
            err=err,
            on_timeout=on_timeout,
            stop_check=stop_check,
        )

    def stream(
        self,
        argv: Sequence[str],
        *,
        token: str,
        user: str,
        env: Mapping[str, str],
        workdir: str | None,
        timeout_s: float,
        out: IO[bytes],
        err: IO[bytes],
        on_timeout: Callable[[str], None] | None = None,
        stop_check: Callable[[], str | None] | None = None,
    ) -> tuple[int | None, bool, float]:
        """Run to completion or ``timeout_s``; then ``on_timeout(token)`` (default: kill by token).

        ``stop_check`` (asked every second) returning a reason ends the command as a time limit does.
        Returns (exit code or None when timed out or stopped, timed out or stopped, seconds).
        """
        start = time.monotonic()
        exec_id, sock = self._exec_socket(argv, user=user, env=env, workdir=workdir)
        reader = threading.Thread(target=_pump, args=(sock, out, err), daemon=True)
        reader.start()
        timed_out = False
        try:
            deadline = start + timeout_s
            while reader.is_alive() and time.monotonic() < deadline:
                reader.join(min(1.0, deadline - time.monotonic()) if stop_check else timeout_s)
                if stop_check is not None and reader.is_alive() and stop_check() is not None:
                    break
            if reader.is_alive():
                timed_out = True
                (on_timeout or (lambda t: self.kill_token(t, user)))(token)
                reader.join(30)
                if reader.is_alive():  # the stream hangs on: take the whole container down
                    self.restart()
                    reader.join(30)
        except BaseException:  # Ctrl-C: leave nothing running behind us
            with contextlib.suppress(Exception):
                self.kill_token(token, user)
            raise
        finally:
            close_socket(sock)
        duration = time.monotonic() - start
        if timed_out:
            return None, True, duration
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        return (int(code) if code is not None else None), False, duration

    def signal_token(self, token: str, signal: str, user: str) -> list[int]:
        """Send ``signal`` (a name or 0) to every process of one exec; the pids it reached.

        It runs as the exec's own user: without CAP_SYS_PTRACE (dropped by Docker) even root in the
        container cannot read another user's ``/proc/PID/environ``.
        """
        result = self.api.exec_create(
            self.id, ["/bin/sh", "-c", _SIGNAL_TOKEN, "isobench-kill", token, signal], user=user
        )
        output = self.api.exec_start(result["Id"])
        return [int(p) for p in output.decode(errors="replace").split() if p.isdigit()]

    def kill_token(self, token: str, user: str, grace_s: float = 2.0) -> None:
        """SIGTERM the processes of one exec, then SIGKILL whatever is still there after ``grace_s``."""
        if not self.running() or not self.signal_token(token, "TERM", user):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not self.signal_token(token, "0", user):
                return
            time.sleep(0.05)
        self.signal_token(token, "KILL", user)

    # -- files --------------------------------------------------------------------------------

    def put_file(self, path: str, data: bytes, *, uid: int, gid: int, mode: int = 0o644) -> None:
        """Write one file into the container (its folder is created first)."""
        parent = str(PurePosixPath(path).parent)
        self.capture(["mkdir", "-p", parent], user=ROOT)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(PurePosixPath(path).name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        if not self.api.put_archive(self.id, parent, buffer.getvalue()):
            raise SandboxError(f"cannot write {path} into container {self.name}")

    def put_tree(self, folder: Path, *, uid: int, gid: int) -> None:
        """Copy a host folder with its contents to the same path in the container, owned by uid:gid.

        Folders, regular files and symbolic links go in with their modes; anything else (a socket, a
        pipe) is left out. The folder's parent must exist in the container.
        """

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            if not (info.isdir() or info.isreg() or info.issym()):
                return None
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            return info

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(str(folder), arcname=folder.name, filter=owned)
            buffer.seek(0)
            if not self.api.put_archive(self.id, str(folder.parent), buffer):
                raise SandboxError(f"cannot copy {folder} into container {self.name}")

    def copy_out(self, path: str, dest_parent: Path) -> bool:
        """Copy a file or folder from the container to ``dest_parent`` on the host (False: not there).

        Only what is safe to extract comes back (``tarfile``'s ``data`` filter): a pipe, a device or
        a link pointing out of the folder that a program left there is skipped (and logged), not an
        error. The engine itself leaves sockets out.
        """
        import docker.errors

        try:
            chunks, _ = self.api.get_archive(self.id, path)
        except docker.errors.NotFound:
            return False
        dest_parent.mkdir(parents=True, exist_ok=True)
        skipped: list[str] = []

        def safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
            try:
                return tarfile.data_filter(member, dest)
            except tarfile.FilterError as exc:
                skipped.append(f"{member.name} ({type(exc).__name__})")
                return None

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
            for chunk in chunks:
                buffer.write(chunk)
            buffer.seek(0)
            with tarfile.open(fileobj=buffer) as tar:
                tar.extractall(dest_parent, filter=safe)
        if skipped:
            log.info("copying %s out of %s skipped: %s", path, self.name, ", ".join(skipped[:20]))
        return True


def _remove_late(api: Any, name: str, wait_s: float = 5.0) -> None:
    """Remove a container whose creation was interrupted, once the engine has finished making it."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            found = api.containers(all=True, filters={"name": f"^/{name}$"})
            if found:
                api.remove_container(found[0]["Id"], force=True)
                return
        except Exception:
            return
        time.sleep(0.1)


def close_socket(sock: Any) -> None:
    """Close an exec's hijacked connection: the file wrapper, the socket under it and the response."""
    for closable in (sock, getattr(sock, "_sock", None), getattr(sock, "_response", None)):
        if closable is not None:
            with contextlib.suppress(Exception):
                closable.close()


def _pump(sock: Any, out: IO[bytes], err: IO[bytes]) -> None:
    """Copy an exec's multiplexed stdout/stderr frames to two files until the stream ends."""
    from docker.utils.socket import STDERR, frames_iter

    try:
        for stream_id, data in frames_iter(sock, tty=False):
            target = err if stream_id == STDERR else out
            target.write(data)
            target.flush()
    except (OSError, ValueError):
        return  # the container was killed or the socket closed under us


class ContainerProcess(Process):
    """A background exec (a benchmark server) with the ``Process`` interface the runner expects."""

    def __init__(
        self,
        box: Container,
        command: str,
        *,
        user: str,
        env: Mapping[str, str],
        workdir: str,
        log: IO[bytes],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.box, self.user, self.token, self.log, self.on_stop = box, user, uuid.uuid4().hex, log, on_stop
        self.exec_id, self.sock = box._exec_socket(
            wrapped(command, self.token), user=user, env=env, workdir=workdir
        )
        self.reader = threading.Thread(target=_pump, args=(self.sock, log, log), daemon=True)
        self.reader.start()
        self._stopped = False

    def alive(self) -> bool:
        return bool(self.box.api.exec_inspect(self.exec_id).get("Running"))

    def probe(self, url: str) -> bool:
        """True when ``url`` answers 200 inside the container (its network may be none)."""
        try:
            code, _, _ = self.box.capture(
                ["/bin/sh", "-c", _PROBE, "isobench-probe", _PROBE_PY, url], user=self.user, timeout_s=30
            )
        except SandboxError:
            return False
        return code == 0

    @property
    def returncode(self) -> int | None:
        state = self.box.api.exec_inspect(self.exec_id)
        return None if state.get("Running") else state.get("ExitCode")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.box.running():
                self.box.kill_token(self.token, self.user)
        finally:
            close_socket(self.sock)
            self.reader.join(10)
            self.log.close()
            if self.on_stop is not None:
                self.on_stop()
