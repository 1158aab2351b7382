"""The ``docker`` backend: every (task, agent) in its own containers, removed when the task ends.

- The agent container (``sleep infinity`` under an init) bind-mounts the working copy at the same path
  as on the host, so the pipeline's paths stay valid. The agent runs as a non-root user that owns the
  working copy, with no network (through the model gateway: a relay on its loopback, below), CPU,
  memory and pid limits; its time budget is enforced by
  killing the whole container. The one-commit history, the leak check and the patch (``git diff``
  against a root-only copy of the base history) are all made inside it.
- One measurement container per variant mounts only that variant's tree (the agent's code never sees
  the human tree); server and benchmark client run in it, with leased GPUs, shared memory and the
  model cache, no network by default (the readiness poll runs inside it) and no keys at all.
- No key of the harness's environment goes into a container: the agent gets only the variables named
  with ``--isobench-agent-env`` (secret ones only with the opt-out ``--isobench-agent-network=bridge``)
  and, through the gateway, the attempt's token.
- Host paths under the runs folder that a command names (``{result_dir}``, the prompt file) are
  copied in before and results copied out after; the artifact folders are never mounted.

Tasks whose repository has a Dockerfile template (vLLM, SGLang) run from task images instead
(``images.py``): the agent container starts from the task image, with the image's build outputs
(compiled extensions, generated files) copied into the working copy and kept out of the patch; each
variant is measured in a container of its own image (baseline: the task image; human and agent:
layers that apply the patch and rebuild native code it touches), in the image's source folder.
Every variant's benchmark files are the base tree's: a patch that changed them is rebuilt from the
host tree with those files restored (``measure/benchfiles.py``).

CLI agents (``agents/cli.py``) name host files they need where they run (``SandboxSpec.agent_tools``:
their CLI binary). They are baked into an agent layer on top of the task's image
(``images.ensure_agent_image``: ``/opt/isobench/tools/<name>/<file>``, tagged by the base image's id
and the tools' content, built offline and reused), so the agent container installs nothing; the agent
finds them through ``tool_paths``. The CLI's home (a folder under the runs folder named by ``HOME``)
is copied in with its config files and copied back after the run.

Through the model gateway (``--isobench-agent-network=gateway``, the default for CLI agents) the agent
container still has no network: the gateway's unix socket folder is mounted read-only and
``gateway/relay.py`` runs as root inside it, serving that socket on ``127.0.0.1:RELAY_PORT`` (the
agent's user can neither stop nor replace it). A Docker ``--internal`` network is no substitute: a
container on one reaches services on every address of the host. With the opt-out ``bridge`` the
container gets the engine's default bridge and the keys; a model server on this host must then listen
on the bridge's gateway address (:func:`bridge_gateway`), not on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..gateway import relay
from ..gateway.ledger import TOKEN_PREFIX
from ..measure.benchfiles import BenchmarkFiles
from ..options import Settings
from ..secrets import is_secret_name
from . import containergit, engine, gpus, images
from .base import SandboxError, SandboxSpec, check_workdir, diff_failed
from .containers import ROOT, Container, ContainerProcess
from .gitutil import git
from .local import WORKDIR_NAME, apply_patch, checkout_tree, count_gpus, tree_patch
from .procs import Process, RunResult
from .repos import forbidden_objects

if TYPE_CHECKING:
    from ..gateway.server import Gateway

log = logging.getLogger("pytest_isobench")
RELAY_PORT = 47800  # the model gateway's relay, on the agent container's loopback
AGENT_UID_WHEN_ROOT = 1000  # a harness running as root still gives the agent an unprivileged user
HOME = "/home/isobench"
PRUNE_MIN_FREE_VAR = "ISOBENCH_PRUNE_MIN_FREE_GB"
_SETUP = (
    'set -e; mkdir -p "$3"; chown "$1:$2" "$3";'
    ' grep -q "^[^:]*:[^:]*:$1:" /etc/passwd'
    ' || echo "isobench:x:$1:$2:ISO-Bench agent:$3:/bin/sh" >> /etc/passwd;'
    ' grep -q "^[^:]*:[^:]*:$2:" /etc/group || echo "isobench:x:$2:" >> /etc/group'
)


def preflight(settings: Settings) -> None:
    """At session start: the engine must answer (else a usage error says how to fix it)."""
    client = engine.client()
    gpus.configure(settings.gpus)
    if settings.prune:
        floor = float(os.environ.get(PRUNE_MIN_FREE_VAR, "50")) * 2**30
        keep = {images.DEFAULT_BASE_IMAGE, *([settings.base_image] if settings.base_image else [])}
        images.prune(client, settings, min_free_bytes=int(floor), keep=keep)


def agent_identity() -> tuple[int, int]:
    """The agent's uid and gid: the harness's own user, or an unprivileged one when that is root."""
    uid = os.geteuid()
    if uid != 0:
        return uid, os.getegid()
    return AGENT_UID_WHEN_ROOT, AGENT_UID_WHEN_ROOT


def bridge_gateway(client: Any | None = None) -> str:
    """The host's address on the engine's default bridge network (``--isobench-agent-network=bridge``).

    A container on that network cannot reach the host's 127.0.0.1: a model server on the host (a
    local vLLM, LiteLLM or a test's fake) must listen on this address (or on 0.0.0.0), and the agent's
    base URL must name it. Read from the network's IPAM settings; engines that record only the subnet
    give the bridge its first address.
    """
    import ipaddress

    network = (client or engine.client()).api.inspect_network("bridge")
    for config in (network.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"]).split("/")[0]
        if config.get("Subnet") and ":" not in config["Subnet"]:
            return str(next(ipaddress.ip_network(config["Subnet"], strict=False).hosts()))
    raise SandboxError(
        "the engine's bridge network has no IPv4 gateway or subnet (docker network inspect bridge)"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60] or "x"


class DockerSandbox:
    """Containers per (task, agent): an agent container, then one measurement container per variant."""

    name = "docker"

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec, self.task, self.settings = spec, spec.task, spec.settings
        self.progress = spec.progress
        self.repo, self.workspace = spec.repo, spec.workspace
        self.workdir = self.workspace / WORKDIR_NAME
        self.workdir_base: str | None = None
        self.benchmark_files = BenchmarkFiles(self.task, self.repo)
        self.benchmark_changes: dict[str, list[str]] = {}
        self.uid, self.gid = agent_identity()
        self.user = f"{self.uid}:{self.gid}"
        try:
            parts = self.workspace.resolve().relative_to(self.settings.work_dir.resolve()).parts
        except ValueError:
            parts = ()
        self.run_id = parts[0] if parts else "adhoc"
        self.client = engine.client()
        self.workspace.mkdir(parents=True, exist_ok=True)
        # Task images (built once, reused): the source folder and import root their template declares.
        self.from_image = images.family(self.task) is not None
        if self.from_image:
            images.ensure_task_image(self.client, self.task, self.settings, self.repo, spec.progress)
        self.image = images.runtime_image(self.task, self.settings)
        if not self.from_image:  # the registry-free base image: built here on first use when missing
            images.ensure_base_image(
                self.client, self.settings, self.image, run_id=self.run_id, progress=spec.progress
            )
        self.image_env, image_labels = self._image_config()
        self.image_src = image_labels.get(images.SRC_LABEL, images.DEFAULT_SRC)
        self.agent: Container | None = None
        # variant -> (host tree, its measurement container, where that tree is inside the container)
        self.boxes: dict[str, tuple[Path, Container, Path]] = {}
        self.processes: list[ContainerProcess] = []
        self.lease: gpus.GpuLease | None = None
        # The agent's tools (its CLI) are baked into a layer on top of the image when the agent's
        # container is first made: it starts from it, and ``tool_paths`` says where each tool is.
        self.agent_image: str | None = None
        self.tool_paths: dict[str, str] = {}

    def _image_config(self) -> tuple[dict[str, str], dict[str, str]]:
        """The image's environment and labels (a missing image is a clear error)."""
        import docker.errors

        try:
            found = self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"image {self.image} is missing: pull or build it (images named"
                f" {images.BASE_IMAGE_REPOSITORY}:TAG are built on first use by docker/build-base-image.sh),"
                " or name another with --isobench-base-image"
            ) from None
        images.record_use(self.settings, self.image)
        config = found.attrs.get("Config") or {}
        pairs = (item.split("=", 1) for item in config.get("Env") or [])
        return {k: v for k, *rest in pairs for v in rest}, dict(config.get("Labels") or {})

    # -- containers ---------------------------------------------------------------------------

    def _container(
        self, role: str, mounts: list[tuple[Path, bool]], *, image: str | None = None, **host: Any
    ) -> Container:
        from docker.types import Mount

        name = "-".join(
            [
                "isobench",
                _slug(self.run_id),
                _slug(self.task.id),
                _slug(self.workspace.name),
                role,
                secrets.token_hex(3),
            ]
        )
        host["mounts"] = [Mount(str(p), str(p), type="bind", read_only=ro) for p, ro in mounts]
        host.setdefault("security_opt", ["no-new-privileges"])
        box = Container(
            image or self.image,
            name=name,
            user=self.user,
            labels=engine.labels(self.run_id, self.task.id, role),
            host_config=host,
            environment={"HOME": HOME},
        )
        box.capture(
            ["/bin/sh", "-c", _SETUP, "isobench-setup", str(self.uid), str(self.gid), HOME], user=ROOT
        )
        return box

    def _ensure_agent_image(self) -> str:
        """The image the agent's container starts from: the task's, or its agent layer (built once)."""
        if self.agent_image is None:
            if self.spec.agent_tools:
                self.agent_image, self.tool_paths = images.ensure_agent_image(
                    self.client, self.settings, self.image, self.spec.agent_tools, self.progress
                )
                if self.spec.agent_network == "none":
                    log.warning(
                        "the agent's CLI runs without a network (--isobench-agent-network=none): it"
                        " cannot reach its model API; use --isobench-agent-network=gateway (see the README)"
                    )
            else:
                self.agent_image = self.image
        return self.agent_image

    def _agent_limits(self) -> dict[str, Any]:
        cpus = min(self.settings.agent_cpus, float(self.client.info().get("NCPU") or 1))
        return {
            # Through the gateway the container has no network either: a relay inside it reaches the
            # gateway's unix socket (see model_endpoint).
            "network_mode": "bridge" if self.spec.agent_network == "bridge" else "none",
            "nano_cpus": int(cpus * 1e9),
            "mem_limit": self.settings.agent_memory,
            "pids_limit": self.settings.agent_pids,
        }

    def _own(self, path: Path) -> None:
        """Hand a tree to the agent's user (only needed when the harness itself runs as root)."""
        if os.geteuid() != 0:
            return
        os.lchown(path, self.uid, self.gid)
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(folder, name), self.uid, self.gid)

    def _retire_agent(self) -> None:
        if self.agent is not None:
            self.agent.remove()
            self.agent = None

    # -- the agent's working copy -------------------------------------------------------------

    def agent_workdir(self) -> Path:
        self._retire_agent()
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        checkout_tree(self.repo, self.task.base_commit, self.workdir)
        self._own(self.workdir)
        expected = git(
            "--git-dir", str(self.repo), "rev-parse", f"{self.task.base_commit}^{{tree}}", cwd=self.workspace
        ).stdout.strip()
        mounts = [(self.workdir, False)]
        if self.spec.agent_network == "gateway":
            mounts.append((self._gateway().socket_path.parent, True))
        self.agent = self._container(
            "agent", mounts, image=self._ensure_agent_image(), **self._agent_limits()
        )
        if self.spec.agent_network == "gateway":
            self._start_relay()
        self.workdir_base, tree = containergit.init_history(self.agent, self.workdir, user=self.user)
        if tree != expected:
            raise SandboxError(
                f"task {self.task.id}: the working copy's tree {tree} differs from the base tree {expected}"
                " (git filters or attributes changed file contents)"
            )
        self.check_no_leak()
        if self.from_image:
            self._copy_build_outputs()
        return self.workdir

    def _gateway(self) -> Gateway:
        if self.spec.gateway is None:
            raise SandboxError("this task has no model gateway (--isobench-agent-network is not gateway)")
        return self.spec.gateway

    def _start_relay(self) -> None:
        """The relay from the container's loopback to the gateway's socket (``gateway/relay.py``)."""
        assert self.agent is not None
        source = Path(relay.__file__).read_text(encoding="utf-8")
        argv = ["python3", "-c", source, str(RELAY_PORT), str(self._gateway().socket_path)]
        code, _, err = self.agent.capture(argv, user=ROOT, timeout_s=60)
        if code != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise SandboxError(f"the model gateway's relay did not start in the agent container: {tail}")

    def model_endpoint(self) -> str:
        """The relay on the agent container's loopback (the container has no other network)."""
        self._gateway()
        if self.agent is None:
            raise SandboxError("model_endpoint() before agent_workdir()")
        return f"http://127.0.0.1:{RELAY_PORT}"

    def _copy_build_outputs(self) -> None:
        """Give the working copy the task image's build outputs, so the agent's code runs as built.

        They are the files the image's source folder holds beyond its one commit (compiled extensions,
        generated modules; not the build folders), copied after the leak check and listed in both
        histories' exclude files: never part of the agent's patch.
        """
        assert self.agent is not None
        listed = containergit.copy_build_outputs(self.agent, self.image_src, self.workdir, owner=self.user)
        if listed:
            containergit.exclude_paths(self.agent, self.workdir, listed)

    def check_no_leak(self) -> None:
        """The leak check, run as the agent's user inside the agent container."""
        if self.agent is None:
            raise SandboxError("check_no_leak() before agent_workdir()")
        forbidden = forbidden_objects(self.repo, self.task.base_commit, self.task.human_commit)
        containergit.check_no_leak(self.agent, self.workdir, forbidden, user=self.user)

    def extract_patch(self) -> str:
        if self.workdir_base is None or self.agent is None:
            raise SandboxError("extract_patch() before agent_workdir()")
        check_workdir(self.workdir)
        if not self.agent.running():
            self.agent.restart()
        try:
            return containergit.extract_patch(self.agent, self.workdir, self.workdir_base)
        except containergit.GitFailed as exc:
            raise diff_failed(exc, self.workdir) from None

    # -- variant trees and their measurement containers ---------------------------------------

    def variant_tree(self, variant: str, patch: str | None = None) -> Path:
        self._retire_agent()  # the agent's phase is over: its limits and container go
        dest = self.workspace / "trees" / variant
        if variant in self.boxes:
            self.boxes.pop(variant)[1].remove()
        if dest.exists():
            shutil.rmtree(dest)
        checkout_tree(
            self.repo, self.task.human_commit if variant == "human" else self.task.base_commit, dest
        )
        if variant == "agent" and patch:
            apply_patch(self.repo, dest, patch, self.workspace / "trees" / "agent.diff")
        # The benchmark is the harness's: its files come from the reference tree, whatever the patch did.
        changes = self.benchmark_changes[variant] = self.benchmark_files.restore(dest)
        self._own(dest)
        if self.from_image:
            # The host tree only proves the patch applies; the measured code is the variant's image,
            # built from the patch, or (when it touched benchmark files) from the restored host tree.
            layer = tree_patch(self.repo, self.task.base_commit, dest) if changes else None
            image = images.ensure_variant_image(
                self.client,
                self.task,
                self.settings,
                variant,
                layer or self._variant_patch(variant, patch),
                self.progress,
            )
            box = self._measurement_container(variant, None, image=image)
            self.boxes[variant] = (dest, box, Path(self.image_src))
        else:
            self.boxes[variant] = (dest, self._measurement_container(variant, dest), dest)
        return dest

    def _variant_patch(self, variant: str, patch: str | None) -> str:
        if variant == "agent":
            return patch or ""
        if variant == "baseline":
            return ""
        from .gitutil import git_bytes

        diff = git_bytes(
            "--git-dir",
            str(self.repo),
            "diff",
            "--binary",
            "--full-index",
            "--no-renames",
            self.task.base_commit,
            self.task.human_commit,
        )
        return diff.decode("utf-8", "surrogateescape")

    def _measurement_container(
        self, variant: str, tree: Path | None, *, image: str | None = None
    ) -> Container:
        from docker.types import DeviceRequest

        needed = self.task.benchmark.gpus or 0
        host: dict[str, Any] = {
            "network_mode": self.settings.measure_network,
            "shm_size": self.settings.shm_size,
        }
        if needed:
            if self.lease is None:
                ids = gpus.usable_ids(count_gpus)
                self.lease = gpus.lease(ids, needed, holder=f"{self.run_id}/{self.task.id}")
            host["device_requests"] = [DeviceRequest(device_ids=list(self.lease.ids), capabilities=[["gpu"]])]
        mounts = [(tree, False)] if tree is not None else []
        if self.settings.model_cache is not None:
            self.settings.model_cache.mkdir(parents=True, exist_ok=True)
            mounts.append((self.settings.model_cache, False))
        if self.task.inputs.datasets:  # the commands' {dataset_dir}, read-only
            mounts.append((self.settings.dataset_dir, True))
        return self._container(f"measure-{variant}", mounts, image=image, **host)

    # -- commands -----------------------------------------------------------------------------

    def environment(self, tree: Path | None = None) -> dict[str, str]:
        """The agent's (``tree`` None) or a measurement's environment: the image's, never the host's
        keys; the agent also gets the variables named with ``--isobench-agent-env``."""
        env = dict(self.image_env)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.update(HOME=HOME, USER="isobench", LANG=env.get("LANG", "C.UTF-8"))
        if tree is None:
            env.update(self._forwarded())
        if self.settings.model_cache is not None:
            env["HF_HOME"] = str(self.settings.model_cache)
        if tree is not None and self.settings.measure_network == "none":
            env.setdefault("HF_HUB_OFFLINE", "1")  # models come from the model cache; no network
        if tree is None and self.from_image:
            tree = self.workdir  # the agent's code, with the image's build outputs, is what imports
        if tree is not None:
            root = os.path.normpath(self._inside(tree) / self.task.import_root)
            env["PYTHONPATH"] = ":".join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        return env

    @staticmethod
    def _without_keys(env: Mapping[str, str]) -> dict[str, str]:
        """Only ``bridge`` puts a key in the agent's container: otherwise none, also none its CLI asked
        for (through the gateway it holds the attempt's token instead, which is no provider key)."""
        dropped = sorted(
            name for name, value in env.items() if is_secret_name(name) and not value.startswith(TOKEN_PREFIX)
        )
        if dropped:
            log.warning(
                "%s not passed to the agent: keys stay outside its container unless"
                " --isobench-agent-network=bridge",
                ", ".join(dropped),
            )
        return {name: value for name, value in env.items() if name not in dropped}

    def _forwarded(self) -> dict[str, str]:
        """The host variables the agent asked for; a key only when the agent has a network to use it."""
        found = {}
        for name in self.settings.agent_env:
            if name not in os.environ:
                continue
            if is_secret_name(name) and self.spec.agent_network != "bridge":
                log.warning(
                    "%s is not passed to the agent: keys stay outside its container unless"
                    " --isobench-agent-network=bridge",
                    name,
                )
                continue
            found[name] = os.environ[name]
        return found

    def _inside(self, host_path: Path) -> Path:
        """Where a host path of the working copy or a variant tree is inside its container."""
        where = host_path.resolve()
        for tree, _, inner in self.boxes.values():
            if where.is_relative_to(tree.resolve()):
                return inner / where.relative_to(tree.resolve())
        return host_path

    def _box_for(self, cwd: Path) -> tuple[Container, bool]:
        where = cwd.resolve()
        if self.agent is not None and where.is_relative_to(self.workdir.resolve()):
            return self.agent, True
        for tree, box, _ in self.boxes.values():
            if where.is_relative_to(tree.resolve()):
                return box, False
        raise SandboxError(f"{cwd} is in none of this sandbox's containers (working copy or variant trees)")

    def _named_paths(self, command: str, env: Mapping[str, str]) -> list[Path]:
        """Paths under the runs folder that a command or its environment names (copied in and out).

        Paths in a mounted tree (already there) and paths inside another named folder (copied with
        it: a CLI agent's home and its TMPDIR, XDG folders) are left out.
        """
        runs = self.settings.runs_dir.resolve()
        mounted = [self.workdir.resolve(), *(tree.resolve() for tree, _, _ in self.boxes.values())]
        found: dict[Path, None] = {}
        for text in (command, *env.values()):
            for token in re.split(r"[\s'\"=,;:]+", text):
                if token.startswith("/"):
                    path = Path(os.path.normpath(token))
                    inside = any(path.is_relative_to(tree) for tree in mounted)
                    if path != runs and path.is_relative_to(runs) and not inside:
                        found[path] = None
        folders = [path for path in found if not path.is_file()]
        return [p for p in found if not any(p != f and p.is_relative_to(f) for f in folders)]

    def _copy_in(self, box: Container, paths: list[Path]) -> list[Path]:
        """Make named host paths exist in the container, owned by the agent's user (a folder with its
        contents: a CLI agent's home with its config files); returns the folders to copy back after."""
        outputs = []
        for path in paths:
            if path.is_file():
                box.put_file(str(path), path.read_bytes(), uid=self.uid, gid=self.gid, mode=0o444)
                continue
            folder = path if path.is_dir() else path.parent
            box.capture(
                ["/bin/sh", "-c", 'mkdir -p "$1" && chown "$2" "$1"', "mk", str(folder), self.user], user=ROOT
            )
            if path.is_dir() and any(path.iterdir()):
                box.put_tree(path, uid=self.uid, gid=self.gid)
            outputs.append(path)
        return outputs

    def _copy_out(self, box: Container, outputs: list[Path]) -> None:
        for path in outputs:
            box.copy_out(str(path), path.parent)

    def run(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path,
        stdin_path: Path | None = None,
        stop_check: Callable[[], str | None] | None = None,
    ) -> RunResult:
        box, is_agent = self._box_for(cwd)
        if is_agent and self.spec.agent_network != "bridge":
            env = self._without_keys(env)
        outputs = self._copy_in(box, self._named_paths(command, env))
        stdin_file = None
        if stdin_path is not None:
            stdin_file = f"/tmp/isobench-stdin-{uuid.uuid4().hex}"
            box.put_file(stdin_file, stdin_path.read_bytes(), uid=self.uid, gid=self.gid, mode=0o400)
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        # The agent's budget is enforced by killing its whole container (everything it started goes).
        on_timeout = (lambda _token: box.restart()) if is_agent else None
        stopped: list[str] = []  # the reason stop_check gave, once it gave one
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            code, timed_out, duration = box.run_command(
                command,
                user=self.user,
                env=env,
                workdir=str(self._inside(cwd)),
                timeout_s=timeout_s,
                out=out,
                err=err,
                stdin_file=stdin_file,
                on_timeout=on_timeout,
                stop_check=None if stop_check is None else lambda: _remember(stop_check, stopped),
            )
        self._copy_out(box, outputs)
        if stopped:  # stopped early like at a time limit, for the reason stop_check gave
            return RunResult(None, False, duration, stdout_path, stderr_path, stopped[0])
        return RunResult(None if timed_out else code, timed_out, duration, stdout_path, stderr_path)

    def start(self, command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path) -> Process:
        box, _ = self._box_for(cwd)
        outputs = self._copy_in(box, self._named_paths(command, env))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        process = ContainerProcess(
            box,
            command,
            user=self.user,
            env=env,
            workdir=str(self._inside(cwd)),
            log=log_path.open("wb"),
            on_stop=lambda: self._copy_out(box, outputs),
        )
        self.processes.append(process)
        return process

    @staticmethod
    def gpus_available() -> int:
        return len(gpus.usable_ids(count_gpus))

    @staticmethod
    def end_session(run_id: str) -> None:
        """Session end: remove the run's containers that a task could not (a crashed worker's too).

        Those of another live process that shares the run id stay (``cleanup`` without force).
        """
        try:
            engine.cleanup(run_id)
        except Exception as exc:  # the run's results stand; say how to finish the cleanup by hand
            print(
                f"isobench: removing the containers of run {run_id} failed ({exc});"
                f" run `python -m pytest_isobench cleanup --run-id {run_id}`",
                file=sys.stderr,
            )

    def close(self) -> None:
        try:
            for process in self.processes:
                with contextlib.suppress(Exception):
                    process.stop()
            self._retire_agent()
            for _, box, _ in self.boxes.values():
                box.remove()
            self.boxes.clear()
        finally:
            if self.lease is not None:
                self.lease.release()
                self.lease = None
            if not self.settings.keep_work:
                shutil.rmtree(self.workspace, ignore_errors=True)


def _remember(check: Callable[[], str | None], reasons: list[str]) -> str | None:
    """Ask ``check``; keep the reason it gives in ``reasons``."""
    reason = check()
    if reason is not None:
        reasons.append(reason)
    return reason
