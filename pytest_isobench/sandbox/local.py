"""The ``local`` backend (the embedded default): private working copies and plain subprocesses.

It isolates the agent's view of the repository (fresh one-commit history, checked for leaks) but not
the machine: the agent runs as the current user with its network and files. Use the docker backend
for real isolation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ..measure.benchfiles import BenchmarkFiles
from ..secrets import is_secret_name, without_secrets
from .base import PatchDoesNotApply, SandboxError, SandboxSpec, check_workdir, diff_failed
from .gitutil import FIXED_IDENTITY, GitError, git
from .procs import Process, RunResult, run
from .repos import LEAK_SCRIPT, forbidden_objects, raise_if_leaking

# Paths never part of an agent's patch: the agent's scratch space, a patch file it may write itself,
# and byte-code its own test runs leave behind.
EXCLUDED_FROM_PATCH = (
    ":(exclude).bench_scratch",
    ":(exclude,glob)model_patch.diff",
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/*.pyc",
)
WORKDIR_NAME = "repo"
log = logging.getLogger("pytest_isobench")
_WARNED_NETWORK = False  # the local backend's network warning, once per process
# What a local agent gets of the harness's environment (besides the ISOBENCH_* variables and the names
# given with --isobench-agent-env): never the keys the harness holds.
# CUDA_VISIBLE_DEVICES narrows what the agent sees, it gives nothing away.
AGENT_ENV_ALLOWED = ("PATH", "HOME", "TERM", "TMPDIR", "LANG", "LANGUAGE", "CUDA_VISIBLE_DEVICES")


def checkout_tree(repo: Path, commit: str, dest: Path) -> None:
    """Write the exact tree of ``commit`` to ``dest`` (no .git, no export filters)."""
    dest.mkdir(parents=True, exist_ok=True)
    index = dest.parent / f".{dest.name}.index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git("--git-dir", str(repo), "--work-tree", str(dest), "read-tree", commit, cwd=dest, env=env)
        git("--git-dir", str(repo), "--work-tree", str(dest), "checkout-index", "-a", "-f", cwd=dest, env=env)
    finally:
        index.unlink(missing_ok=True)


def count_gpus() -> int:
    """GPUs visible to this process: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


class LocalSandbox:
    """Working copies and variant trees in a private folder; commands as plain subprocesses."""

    name = "local"

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.task = spec.task
        self.repo = spec.repo
        self.workspace = spec.workspace
        self.workdir = self.workspace / WORKDIR_NAME
        # A private copy of the working copy's git directory: the agent may rewrite or delete its own
        # .git, the harness still diffs against the untouched base.
        self.harness_git = self.workspace / "harness.git"
        self.workdir_base: str | None = None
        self.benchmark_files = BenchmarkFiles(self.task, self.repo)
        self.benchmark_changes: dict[str, list[str]] = {}
        self.tool_paths = {name: str(path) for name, path in spec.agent_tools.items()}  # host paths
        self.workspace.mkdir(parents=True, exist_ok=True)

    # -- the agent's working copy -------------------------------------------------------------

    def agent_workdir(self) -> Path:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        shutil.rmtree(self.harness_git, ignore_errors=True)
        checkout_tree(self.repo, self.task.base_commit, self.workdir)
        git("init", "--quiet", cwd=self.workdir, isolated=True)
        git("add", "--all", "--force", cwd=self.workdir, isolated=True)
        git("commit", "--quiet", "--no-verify", "-m", "Initial state", cwd=self.workdir, isolated=True)
        self.workdir_base = git("rev-parse", "HEAD", cwd=self.workdir).stdout.strip()
        tree = git("rev-parse", "HEAD^{tree}", cwd=self.workdir).stdout.strip()
        expected = git(
            "--git-dir", str(self.repo), "rev-parse", f"{self.task.base_commit}^{{tree}}", cwd=self.workspace
        )
        if tree != expected.stdout.strip():
            raise SandboxError(
                f"task {self.task.id}: the working copy's tree {tree} differs from the base tree"
                f" {expected.stdout.strip()} (git filters or attributes changed file contents)"
            )
        shutil.copytree(self.workdir / ".git", self.harness_git, symlinks=True)
        check_no_leak(self.workdir, self.repo, self.task.base_commit, self.task.human_commit)
        return self.workdir

    def extract_patch(self) -> str:
        if self.workdir_base is None:
            raise SandboxError("extract_patch() before agent_workdir()")
        check_workdir(self.workdir)
        index = self.workspace / "extract.index"
        env = {"GIT_INDEX_FILE": str(index)}
        base_args = ("--git-dir", str(self.harness_git), "--work-tree", str(self.workdir))
        try:
            out = ""
            for step in patch_steps(self.workdir_base):
                out = git(*base_args, *step, cwd=self.workdir, env=env).stdout
        except (GitError, OSError) as exc:
            raise diff_failed(exc, self.workdir) from None
        finally:
            with contextlib.suppress(OSError):
                index.unlink(missing_ok=True)
        return out

    # -- variant trees ------------------------------------------------------------------------

    def variant_tree(self, variant: str, patch: str | None = None) -> Path:
        dest = self.workspace / "trees" / variant
        if dest.exists():
            shutil.rmtree(dest)
        checkout_tree(
            self.repo, self.task.human_commit if variant == "human" else self.task.base_commit, dest
        )
        if variant == "agent" and patch:
            apply_patch(self.repo, dest, patch, self.workspace / "trees" / "agent.diff")
        # The benchmark is the harness's: its files come from the reference tree, whatever the patch did.
        self.benchmark_changes[variant] = self.benchmark_files.restore(dest)
        return dest

    # -- commands -----------------------------------------------------------------------------

    def model_endpoint(self) -> str:
        """The gateway on loopback: the agent runs on this host (and has its whole network)."""
        if self.spec.gateway is None:
            raise SandboxError("this task has no model gateway (--isobench-agent-network is not gateway)")
        global _WARNED_NETWORK
        if not _WARNED_NETWORK:
            _WARNED_NETWORK = True
            log.warning(
                "local backend: the agent reaches its model through the gateway (no key in its"
                " environment), but it runs on this host with its whole network; --isobench-backend=docker"
                " isolates it"
            )
        return self.spec.gateway.url

    def environment(self, tree: Path | None = None) -> dict[str, str]:
        """The agent's (``tree`` None): an allow-list; a benchmark's: this environment less its secrets."""
        if tree is None:
            env = agent_environment(os.environ, self.spec.settings.agent_env)
        else:
            env = without_secrets(os.environ)
        # `python` in task commands is the interpreter running the harness.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_XDIST_WORKER_COUNT", None)
        if self.spec.settings.model_cache is not None:  # where `prefetch` put the models
            env["HF_HOME"] = str(self.spec.settings.model_cache)
        if tree is not None:
            root = os.path.normpath(tree / self.task.import_root)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        return env

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
        return run(
            command,
            cwd=cwd,
            env=env,
            timeout_s=timeout_s,
            stdout_path=stdout_path,
            stderr_path=stderr_path,
            stdin_path=stdin_path,
            stop_check=stop_check,
        )

    def start(self, command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path) -> Process:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            return Process(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)

    @staticmethod
    def gpus_available() -> int:
        return count_gpus()

    def close(self) -> None:
        if not self.spec.settings.keep_work:
            shutil.rmtree(self.workspace, ignore_errors=True)


def apply_patch(repo: Path, dest: Path, patch: str, patch_file: Path) -> None:
    """Apply a patch to a tree: checked first, then applied, never partly or forced."""
    patch_file.write_text(patch, encoding="utf-8", errors="surrogateescape")
    args = ("--git-dir", str(repo), "--work-tree", str(dest), "apply", "--whitespace=nowarn")
    try:
        git(*args, "--check", str(patch_file), cwd=dest)
        git(*args, str(patch_file), cwd=dest)
    except GitError as exc:
        raise PatchDoesNotApply(str(exc).split(": ", 1)[-1]) from None


def tree_patch(repo: Path, base: str, tree: Path) -> str:
    """A tree's difference from the base commit, as a binary-safe patch (the harness's own diff)."""
    index = tree.parent / f".{tree.name}.patch-index"
    base_args = ("--git-dir", str(repo), "--work-tree", str(tree))
    try:
        out = ""
        for step in patch_steps(base):
            out = git(*base_args, *step, cwd=tree, env={"GIT_INDEX_FILE": str(index)}).stdout
    finally:
        index.unlink(missing_ok=True)
    return out


def agent_environment(source: Mapping[str, str], names: tuple[str, ...] = ()) -> dict[str, str]:
    """The allow-listed part of ``source`` an agent gets: PATH, HOME, TERM, TMPDIR, locale,
    CUDA_VISIBLE_DEVICES, the ISOBENCH_* variables that are not secrets, and those ``names`` asks for."""
    env = {
        name: value
        for name, value in source.items()
        if name in AGENT_ENV_ALLOWED
        or name.startswith("LC_")
        or (name.startswith("ISOBENCH_") and not is_secret_name(name))
    }
    env.update({name: source[name] for name in names if name in source})
    return env


def patch_steps(base: str) -> list[list[str]]:
    """The git commands (run with the harness's git dir, the working tree and a private index) whose
    last output is the agent's patch: the base tree, then everything but the excluded paths, diffed."""
    diff = ["diff", "--cached", "--binary", "--full-index", "--no-color", "--no-ext-diff", "--no-renames"]
    return [["read-tree", base], ["add", "--all", "--", ".", *EXCLUDED_FROM_PATCH], [*diff, base, "--"]]


def check_no_leak(workdir: Path, repo: Path, base_commit: str, human_commit: str) -> None:
    """Prove that no git command in ``workdir`` can reach the human change or any later history."""
    forbidden = forbidden_objects(repo, base_commit, human_commit)
    report = subprocess.run(
        ["/bin/sh", "-c", LEAK_SCRIPT, "isobench-leak", "-", *forbidden],
        cwd=workdir,
        env={**os.environ, **FIXED_IDENTITY},
        capture_output=True,
        text=True,
        check=False,
    )
    if report.returncode != 0:
        raise SandboxError(f"the leak check in {workdir} failed: {report.stderr.strip()}")
    raise_if_leaking(workdir, report.stdout, forbidden)
