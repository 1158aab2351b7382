"""The Sandbox protocol, its registry and the errors a sandbox raises."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..options import Settings
from ..tasks import Task
from .procs import Process, RunResult

if TYPE_CHECKING:
    from ..gateway.server import Gateway

VARIANTS = ("baseline", "human", "agent")


class SandboxError(RuntimeError):
    """Infrastructure trouble (the task errors; it is not the agent's failure)."""


class LeakError(SandboxError):
    """The agent's working copy can reach a commit, tree or file of the human change."""


class PatchDoesNotApply(Exception):
    """The agent's patch does not apply cleanly to the base tree (hard verdict: failed)."""


class WorkdirDestroyed(Exception):
    """The agent left no working copy the harness can diff: it deleted it, filled the disk or broke
    git in it. Its failure (hard verdict ``failed`` with ``reason``), not an infrastructure error."""

    def __init__(self, message: str, reason: str = "workdir_destroyed") -> None:
        super().__init__(message)
        self.reason = reason


def check_workdir(workdir: Path) -> None:
    """Raise WorkdirDestroyed when the working copy is gone, not a folder, unreadable or empty."""
    if workdir.is_symlink() or not workdir.is_dir():
        raise WorkdirDestroyed(f"the agent's working copy {workdir} is gone")
    try:
        names = [path.name for path in workdir.iterdir()]
    except OSError as exc:
        raise WorkdirDestroyed(f"the agent's working copy {workdir} cannot be read: {exc}") from None
    if not [name for name in names if name != ".git"]:
        raise WorkdirDestroyed(f"the agent's working copy {workdir} is empty: every file was deleted")


DISK_FULL_WORDS = ("no space left on device", "out of diskspace", "enospc", "disk quota exceeded")


def diff_failed(error: Exception, workdir: Path) -> WorkdirDestroyed:
    """The harness's diff of a working copy failed: what the agent did to it (disk full, or else)."""
    message = f"the harness cannot diff the agent's working copy: {error}"
    full = any(words in str(error).lower() for words in DISK_FULL_WORDS)
    with contextlib.suppress(OSError):
        full = full or shutil.disk_usage(workdir).free < 2**20
    return WorkdirDestroyed(message, "disk_full" if full else "workdir_destroyed")


@dataclass(frozen=True)
class SandboxSpec:
    """What a backend needs to set one task up."""

    task: Task
    task_file: Path
    repo: Path  # harness-side git repository with the base and human commits (never shown to agents)
    workspace: Path  # private scratch folder for this (task, agent)
    settings: Settings
    progress: Callable[[str], None] | None = None  # live progress lines (e.g. a long image build)
    # Host files the agent needs where it runs (``CliAgent.tools()``: its CLI); the sandbox makes them
    # available there and says where in ``tool_paths``.
    agent_tools: Mapping[str, Path] = field(default_factory=dict)
    # How the agent reaches its model (``gateway.access.resolve_network``): gateway, none or bridge,
    # and the gateway when it is ``gateway``.
    agent_network: str = "none"
    gateway: Gateway | None = None


class Sandbox(Protocol):
    """Where the agent works and the variants are measured, for one (task, agent)."""

    name: str
    # Where the agent's tools (``SandboxSpec.agent_tools``) are where it runs: name -> path (the
    # docker backend knows them once ``agent_workdir`` has built the agent's image).
    tool_paths: dict[str, str]

    def agent_workdir(self) -> Path:
        """Create the agent's working copy: the base tree only, fresh one-commit history, leak-checked."""
        ...

    def extract_patch(self) -> str:
        """The agent's change as a binary-safe ``git diff`` against the base tree (scratch excluded);
        WorkdirDestroyed when the agent left nothing that can be diffed."""
        ...

    def variant_tree(self, variant: str, patch: str | None = None) -> Path:
        """A tree to measure: ``baseline``, ``human`` or ``agent`` (base + patch, or PatchDoesNotApply).

        Its benchmark files are the reference tree's (``measure.benchfiles``), whatever the patch did.
        """
        ...

    def model_endpoint(self) -> str:
        """The model gateway's base URL as the agent reaches it where it runs (``agent_network`` is
        ``gateway``); SandboxError when the gateway cannot be reached from there."""
        ...

    def environment(self, tree: Path | None = None) -> dict[str, str]:
        """The environment commands run with: the agent's when ``tree`` is None, a benchmark's otherwise
        (with ``tree`` on the import path). Neither holds the harness's secrets."""
        ...

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
        """Run a shell command to completion or until its time limit (then kill it and its children).

        ``stop_check``, asked every second or so while the command runs, may return a reason to stop it
        early (the result's ``stopped``), as the disk watchdog does.
        """
        ...

    def start(self, command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path) -> Process:
        """Start a background command (a benchmark server); the caller stops it."""
        ...

    @staticmethod
    def gpus_available() -> int:
        """How many GPUs a task may use here (callable on the class, before a sandbox exists)."""
        ...

    def close(self) -> None:
        """Remove everything this sandbox created (unless asked to keep it)."""
        ...


class SandboxFactory(Protocol):
    """A sandbox class (or anything alike): build one per (task, agent); count GPUs beforehand."""

    def __call__(self, spec: SandboxSpec) -> Sandbox: ...

    def gpus_available(self) -> int: ...


def builtin_sandboxes() -> dict[str, SandboxFactory]:
    """The sandboxes that ship with the plugin."""
    from .docker import DockerSandbox
    from .local import LocalSandbox

    return {"local": LocalSandbox, "docker": DockerSandbox}


def sandbox_registry(extra: list[Mapping[str, SandboxFactory]]) -> dict[str, SandboxFactory]:
    """Built-ins plus those that ``pytest_isobench_sandboxes`` hook implementations return."""
    registry = builtin_sandboxes()
    for mapping in extra:
        registry.update(mapping)
    return registry
