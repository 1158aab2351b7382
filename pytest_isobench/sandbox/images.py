"""Images: which one a task runs in, deterministic names and labels, Dockerfile templates, pruning.

Source tasks (the smoke suite, the tests' toy tasks) run straight from the registry-free base image
(``docker/build-base-image.sh``). Git tasks whose repository has a template (``docker/<repo>.Dockerfile``)
get an image per base commit, ``isobench/<repo>:<base12>``: the build context carries the base tree
(``src.tar``, made by the harness from its own clone, so the build clones nothing), and the template
installs it. Human and agent variants are layers on top (``docker/variant.Dockerfile``) tagged by the
patch's hash, so an image is built once and reused while it exists. Every image carries ``isobench.*``
labels; ``prune`` removes them least recently used first when the engine's disk runs low.

A template tells the harness, by labels, where the tree lives (``isobench.src``) and how to rebuild
compiled code after a patch that touches native sources (``isobench.rebuild``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ..options import Settings
from ..tasks import Task
from .base import SandboxError

DEFAULT_BASE_IMAGE = "isobench/base:bookworm-py3"
BASE_IMAGE_REPOSITORY = "isobench/base"  # images of this repository are built on first use
BASE_IMAGE_SCRIPT = "build-base-image.sh"
DEFAULT_CUDA_IMAGE = "nvidia/cuda:12.4.1-devel-ubuntu22.04"
TEMPLATE_DIR_VAR = "ISOBENCH_DOCKER_DIR"
# What the family's benchmark scripts import beyond the package itself.
BENCH_DEPS = {
    "vllm": "aiohttp datasets pandas pillow numpy tqdm transformers",
    "sglang": "aiohttp datasets pandas pillow numpy tqdm transformers",
}
NEEDS_TEMPLATE = ("vllm", "sglang")  # repositories that only run from their task images
SRC_LABEL = "isobench.src"
REBUILD_LABEL = "isobench.rebuild"
DEFAULT_SRC = "/opt/src"
VLLM_WHEEL = (
    "https://vllm-wheels.s3.us-west-2.amazonaws.com/{commit}/vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl"
)
FLASHINFER_INDEX = "https://flashinfer.ai/whl/cu124/torch2.4/flashinfer/"
# Files whose change needs the compiled extensions rebuilt (C/C++/CUDA sources and their build files).
NATIVE = re.compile(r"(\.(c|cc|cpp|cxx|h|hh|hpp|cu|cuh|cmake)|(^|/)CMakeLists\.txt|(^|/)setup\.py)$")
CONTEXT_IN_MEMORY = 64 * 2**20  # a larger build context is spooled to a temporary file
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
log = logging.getLogger("pytest_isobench")


def template_dir() -> Path:
    """The ``docker/`` folder of this checkout (or ``$ISOBENCH_DOCKER_DIR``)."""
    return Path(os.environ.get(TEMPLATE_DIR_VAR) or Path(__file__).resolve().parents[2] / "docker")


def family(task: Task) -> str | None:
    """The repository family with a Dockerfile template, or None (then the task runs in the base image)."""
    if task.source is not None:
        return None
    template = template_dir() / f"{task.repo}.Dockerfile"
    if template.is_file():
        return task.repo
    if task.repo in NEEDS_TEMPLATE:  # compiled code: the base image with a mounted tree cannot run it
        raise SandboxError(
            f"task {task.id}: the Dockerfile template {template} is missing; point {TEMPLATE_DIR_VAR}"
            " at the docker/ folder of a pytest-isobench checkout"
        )
    return None


def task_image_name(task: Task) -> str:
    return f"isobench/{task.repo}:{task.base_commit[:12]}"


def variant_image_name(task: Task, variant: str, patch: str) -> str:
    """``isobench/<repo>:<base12>-<variant>-<patch hash 12>``: the same patch finds the same image."""
    return f"{task_image_name(task)}-{variant}-{patch_hash(patch)[:12]}"


def patch_hash(patch: str) -> str:
    return hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()


def runtime_image(task: Task, settings: Settings) -> str:
    """The image a task's containers start from."""
    if family(task) is not None:
        return task_image_name(task)
    return settings.base_image or DEFAULT_BASE_IMAGE


def render(template: str, params: Mapping[str, object]) -> str:
    """Fill ``{{name}}`` placeholders (Dockerfile ``$VARS`` stay as they are); all must be given."""
    missing = sorted({m for m in _PLACEHOLDER.findall(template) if m not in params})
    if missing:
        raise SandboxError(f"template placeholders without a value: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), template)


def _template(name: str) -> str:
    path = template_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SandboxError(f"Dockerfile template {path} cannot be read: {exc}") from None


def task_dockerfile(task: Task, settings: Settings, *, max_jobs: int = 8, cuda_arch: str = "9.0") -> str:
    """The Dockerfile of a real task's image at its base commit."""
    name = family(task)
    if name is None:
        raise SandboxError(
            f"task {task.id}: no Dockerfile template {template_dir() / (task.repo + '.Dockerfile')}"
            " (source tasks and repositories without one run in the base image)"
        )
    return render(
        _template(f"{name}.Dockerfile"),
        {
            "base_image": settings.base_image or DEFAULT_CUDA_IMAGE,
            "python": "python3",
            "base_commit": task.base_commit,
            "wheel_url": VLLM_WHEEL.format(commit=task.base_commit),
            "flashinfer_index": FLASHINFER_INDEX,
            "max_jobs": max_jobs,
            "cuda_arch": cuda_arch,
            "bench_deps": BENCH_DEPS.get(name, ""),
        },
    )


def source_archive(repo: Path, commit: str) -> bytes:
    """The tree at ``commit`` as a tar (the task image's ``src.tar``), from the harness's own clone."""
    from .gitutil import git_bytes

    return git_bytes("--git-dir", str(repo), "archive", "--format=tar", commit)


def touches_native(patch: str) -> bool:
    """Whether a patch changes files that need the compiled extensions rebuilt."""
    paths = re.findall(r"^diff --git a/(\S+) b/(\S+)$", patch, flags=re.MULTILINE)
    return any(NATIVE.search(path) for pair in paths for path in pair)


def variant_dockerfile(
    task: Task,
    variant: str,
    patch: str,
    *,
    task_image: str | None = None,
    src: str = DEFAULT_SRC,
    rebuild: str | None = None,
) -> str:
    """The layer that turns a task image into its ``human`` or ``agent`` variant.

    ``rebuild`` (the task image's ``isobench.rebuild`` label) runs when the patch touches native code.
    """
    native = touches_native(patch)
    if native and not rebuild:
        raise SandboxError(
            f"task {task.id}: the {variant} patch changes native sources, but the task image declares no"
            f" rebuild command (label {REBUILD_LABEL} in docker/{task.repo}.Dockerfile)"
        )
    return render(
        _template("variant.Dockerfile"),
        {
            "task_image": task_image or task_image_name(task),
            "src": src,
            "rebuild": rebuild if native else "true",
            "variant": variant,
            "patch_sha256": patch_hash(patch),
            "native": str(native).lower(),
        },
    )


ContextFile = bytes | Path  # a build-context file: its bytes, or a host file (sent as an executable)


def build_context(dockerfile: str, files: Mapping[str, ContextFile] | None = None) -> IO[bytes]:
    """A tar build context holding the Dockerfile and extra files (no host folder is sent).

    A ``Path`` value is a host file read as the tar is written (mode 755: the agent layer's tools);
    a large context spills to a temporary file instead of memory (a bundled CLI is ~400 MB).
    """
    buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=CONTEXT_IN_MEMORY)  # noqa: SIM115
    folders: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            for parent in reversed(Path(name).parents[:-1]):  # folders first, readable by everyone
                if str(parent) not in folders:
                    folders.add(str(parent))
                    folder = tarfile.TarInfo(str(parent))
                    folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(folder)
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(data, Path):
                info.size, info.mode = data.stat().st_size, 0o755
                with data.open("rb") as source:
                    tar.addfile(info, source)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def ensure_image(
    client: Any,
    name: str,
    dockerfile: str,
    files: Mapping[str, ContextFile] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
    network: bool = True,
) -> bool:
    """Build ``name`` unless it exists (then reuse it); True when it was built now."""
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(name)
        return False
    # The low-level call streams: a long build's log grows as it goes, not only at its end.
    lines: list[str] = []
    error = None
    with build_context(dockerfile, files) as context:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            tag=name,
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            network_mode=None if network else "none",
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                lines.append(str(chunk["stream"]))
                if log is not None:
                    log(lines[-1].rstrip())
            if "error" in chunk:
                error = str(chunk["error"]).strip()
    if error is None:
        return True
    text = "".join(lines)
    # The layers made before the failing step stay behind untagged: remove them (never a tagged one).
    for layer in reversed(re.findall(r"^ ---> ([0-9a-f]{12})$", text, flags=re.MULTILINE)):
        with contextlib.suppress(docker.errors.APIError):
            if not client.images.get(layer).tags:
                client.images.remove(layer)
    raise SandboxError(f"building {name} failed: {error}\n{text[-3000:]}")


def _build_log(settings: Settings, name: str) -> Path:
    return settings.cache_dir / "images" / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".build.log")


def _ensure_locked(
    client: Any,
    settings: Settings,
    name: str,
    dockerfile: str,
    files: Callable[[], Mapping[str, ContextFile]],
    *,
    labels: Mapping[str, str],
    network: bool,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build ``name`` once across processes (pytest-xdist workers wait on a host file lock)."""
    from .repos import file_lock

    log_path = _build_log(settings, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(log_path.with_suffix(".lock")):
        with contextlib.suppress(Exception):
            client.images.get(name)
            return name
        # Task images can take an hour (a CUDA extension build): say so, and where the log grows.
        say = progress or (lambda message: log.info("%s", message))
        say(f"building image {name} (log: {log_path})")
        started = time.monotonic()
        with log_path.open("w", encoding="utf-8") as build_log:
            try:
                ensure_image(
                    client,
                    name,
                    dockerfile,
                    files(),
                    labels={"isobench.owner": "pytest-isobench", **labels},
                    log=lambda line: print(line, file=build_log, flush=True),
                    network=network,
                )
            except SandboxError as exc:
                print(exc, file=build_log)
                raise SandboxError(f"{exc}\n(build log: {log_path})") from None
        say(f"built image {name} in {time.monotonic() - started:.0f} s")
    return name


# -- the base image, built on first use -----------------------------------------------------------


def base_image_script() -> Path:
    return template_dir() / BASE_IMAGE_SCRIPT


def builds_on_first_use(name: str) -> bool:
    """Only the project's own base images (``isobench/base:<tag>``) are built here when missing."""
    return name.rsplit(":", 1)[0] == BASE_IMAGE_REPOSITORY


def _passwordless_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    try:
        done = subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def base_image_blocker(script: Path) -> str | None:
    """Why this machine cannot build the base image (None when it can)."""
    if not script.is_file():
        return (
            f"the build script {script} is missing (point {TEMPLATE_DIR_VAR} at the docker/ folder"
            " of a checkout)"
        )
    if not (shutil.which("debootstrap") or shutil.which("apt-get")):
        return "the build needs debootstrap, and neither debootstrap nor apt-get (to install it) is on PATH"
    if os.geteuid() != 0 and not _passwordless_sudo():
        return "debootstrap needs root, and this user is neither root nor allowed password-less sudo"
    return None


def ensure_base_image(
    client: Any,
    settings: Settings,
    name: str,
    *,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Build the base image ``name`` with ``docker/build-base-image.sh`` when it is missing.

    Once per host at a time (pytest-xdist workers wait on a file lock; the one that builds prints
    progress lines, the others find the image). The build log stays under the cache folder. When this
    machine cannot build it, or the build fails, the reason is recorded for the run: every later task
    of the same run gets the same error at once instead of trying again.
    """
    import docker.errors

    from .repos import file_lock

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(name)
        return
    if not builds_on_first_use(name):
        return  # someone else's image: the caller's "missing" error says what to do
    say = progress or (lambda message: log.info("%s", message))
    log_path = _build_log(settings, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    failed = log_path.with_suffix(".failed.json")
    script = base_image_script()
    with file_lock(log_path.with_suffix(".lock")):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(name)
            return
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(failed.read_text(encoding="utf-8"))
            if record["run_id"] == run_id:
                raise SandboxError(str(record["message"]))
        blocker = base_image_blocker(script)
        if blocker is not None:
            message = (
                f"image {name} is missing and cannot be built here: {blocker}. Build it once on this"
                f" host with `sudo {script} {name}` (no registry needed), or name another with"
                " --isobench-base-image"
            )
            _record_failure(failed, run_id, message)
            raise SandboxError(message)
        command = ([] if os.geteuid() == 0 else ["sudo", "-n"]) + ["bash", str(script), name]
        say(f"building the base image {name} with {script} (about a minute; log: {log_path})")
        started = time.monotonic()
        returncode, tail = _run_logged(command, log_path, say)
        exists = True
        try:
            client.images.get(name)
        except docker.errors.ImageNotFound:
            exists = False
        if returncode != 0 or not exists:
            why = f"exit code {returncode}" if returncode != 0 else "the script did not create it"
            message = (
                f"building image {name} with {script} failed ({why}): {tail} (build log: {log_path}). Fix the"
                f" cause and run `sudo {script} {name}`, or name another image with --isobench-base-image"
            )
            _record_failure(failed, run_id, message)
            raise SandboxError(message)
        failed.unlink(missing_ok=True)
        say(f"built the base image {name} in {time.monotonic() - started:.0f} s")


def _run_logged(command: list[str], log_path: Path, say: Callable[[str], None]) -> tuple[int, str]:
    """Run a build script, its output into ``log_path``; its own status lines become progress lines."""
    lines: list[str] = []
    with log_path.open("w", encoding="utf-8") as build_log:
        print("$", " ".join(command), file=build_log, flush=True)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            print(exc, file=build_log)
            return 127, str(exc)
        with process:
            assert process.stdout is not None
            for line in process.stdout:
                build_log.write(line)
                build_log.flush()
                lines = [*lines[-19:], line.rstrip()]
                if line.startswith(f"{BASE_IMAGE_SCRIPT.removesuffix('.sh')}:"):
                    say(line.rstrip())
            returncode = process.wait()
        print(f"exit code {returncode}", file=build_log)
    return returncode, " | ".join(x for x in lines[-3:] if x) or "no output"


def _record_failure(path: Path, run_id: str, message: str) -> None:
    path.write_text(json.dumps({"run_id": run_id, "message": message}), encoding="utf-8")


def ensure_task_image(
    client: Any, task: Task, settings: Settings, repo: Path, progress: Callable[[str], None] | None = None
) -> str:
    """The task's image at its base commit, built from its template unless it already exists."""
    name = task_image_name(task)
    return _ensure_locked(
        client,
        settings,
        name,
        task_dockerfile(task, settings),
        lambda: {"src.tar": source_archive(repo, task.base_commit)},
        labels={
            "isobench.kind": "task",
            "isobench.repo": task.repo,
            "isobench.base_commit": task.base_commit,
        },
        network=True,  # the template installs dependencies (wheels, pip packages)
        progress=progress,
    )


def ensure_variant_image(
    client: Any,
    task: Task,
    settings: Settings,
    variant: str,
    patch: str,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The task image with a patch applied (and native code rebuilt when the patch touches it)."""
    base = task_image_name(task)
    if not patch.strip():
        return base
    found = client.images.get(base).labels or {}
    name = variant_image_name(task, variant, patch)
    native = touches_native(patch)
    dockerfile = variant_dockerfile(
        task,
        variant,
        patch,
        task_image=base,
        src=found.get(SRC_LABEL, DEFAULT_SRC),
        rebuild=found.get(REBUILD_LABEL),
    )
    return _ensure_locked(
        client,
        settings,
        name,
        dockerfile,
        lambda: {"variant.diff": patch.encode("utf-8", "surrogateescape")},
        labels={
            "isobench.kind": "variant",
            "isobench.repo": task.repo,
            "isobench.base_commit": task.base_commit,
        },
        network=native,  # applying a patch needs nothing; a rebuild may fetch build dependencies
        progress=progress,
    )


# -- the agent layer: the agent's tools (its CLI) baked into the image it starts from ------------

AGENT_IMAGE_REPOSITORY = "isobench/agent"
TOOLS_DIR = "/opt/isobench/tools"  # a tool ``name`` at host path P is TOOLS_DIR/<name>/<P's file name>
TOOL_HASHES = "tool-hashes.json"
_TOOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
AGENT_LAYER = """\
FROM {base}
COPY tools/ {tools_dir}/
"""


def tool_files(tools: Mapping[str, Path]) -> dict[str, tuple[Path, str]]:
    """name -> (the host file to copy, its path inside the image); a clear error for what cannot go in."""
    found = {}
    for name, given in sorted(tools.items()):
        if not _TOOL_NAME.match(name):
            raise SandboxError(f"agent tool name {name!r}: use letters, digits, '.', '_' and '-' only")
        source = Path(given).resolve()
        if source.is_dir():
            raise SandboxError(
                f"agent tool {name!r} is a folder ({given}): the docker backend bakes single-file tools"
                " (a self-contained CLI binary) into the agent's image, not an installation folder such"
                " as a Python virtual environment; run this agent with --isobench-backend=local"
            )
        if not source.is_file():
            raise SandboxError(f"agent tool {name!r}: {given} is not a file")
        if venv := _venv_interpreter(source):
            raise SandboxError(
                f"agent tool {name!r} ({given}) is a script of the Python virtual environment {venv}:"
                " the docker backend bakes single-file tools (a self-contained CLI binary) into the"
                " agent's image, and that environment does not exist there; run this agent with"
                " --isobench-backend=local"
            )
        file_name = Path(given).name if _TOOL_NAME.match(Path(given).name) else name
        found[name] = (source, f"{TOOLS_DIR}/{name}/{file_name}")
    return found


def _venv_interpreter(path: Path) -> Path | None:
    """The virtual environment a script's ``#!`` line runs it with (an entry point such as
    ``trae-cli``), or None for a binary or another script."""
    with path.open("rb") as stream:
        head = stream.read(512)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    interpreter = Path(words[0].decode(errors="replace")) if words else None
    if interpreter is None or not interpreter.is_absolute():
        return None
    venv = interpreter.parent.parent
    return venv if (venv / "pyvenv.cfg").is_file() else None


def tool_digest(settings: Settings, path: Path) -> str:
    """The sha256 of a host file, remembered by (path, size, mtime, inode) in the cache folder: a
    400 MB CLI is hashed once, not once per task. Processes share the record under a file lock."""
    from .repos import file_lock

    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    record = settings.cache_dir / "images" / TOOL_HASHES
    record.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(record.with_suffix(".lock")):  # the second worker waits, then finds the hash
        known = _read_json(record)
        if isinstance(known.get(key), str):
            return str(known[key])
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(2**20):
                digest.update(chunk)
        # Older entries of the same path are stale (the file changed): drop them.
        kept = {k: v for k, v in known.items() if not k.startswith(f"{path}|")}
        kept[key] = digest.hexdigest()
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(record)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def agent_image_name(base_id: str, tools: Mapping[str, tuple[str, str]]) -> str:
    """``isobench/agent:<hash>`` of the base image's id and each tool's (path inside, content hash):
    the same CLI on the same image finds the same layer; a new CLI version or a rebuilt base does not."""
    text = json.dumps({"base": base_id, "tools": {k: list(v) for k, v in sorted(tools.items())}})
    return f"{AGENT_IMAGE_REPOSITORY}:{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def ensure_agent_image(
    client: Any,
    settings: Settings,
    base_image: str,
    tools: Mapping[str, Path],
    progress: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, str]]:
    """The agent's image: ``base_image`` with ``tools`` copied under ``TOOLS_DIR`` (root-owned, mode
    755), built offline from a local image (no registry) unless it exists; returns (its tag, name ->
    path inside). Built once per host at a time (other pytest-xdist workers wait on the lock)."""
    files = tool_files(tools)
    base_id = str(client.images.get(base_image).id)
    digests = {name: (inner, tool_digest(settings, source)) for name, (source, inner) in files.items()}
    name = agent_image_name(base_id, digests)
    with contextlib.suppress(Exception):
        client.images.get(name)
        record_use(settings, name)
        return name, {tool: inner for tool, (_, inner) in files.items()}
    sizes = ", ".join(f"{tool} {source.stat().st_size / 2**20:.0f} MB" for tool, (source, _) in files.items())
    if progress is not None:
        progress(f"baking the agent's tools ({sizes}) into {name} on top of {base_image}")
    _ensure_locked(
        client,
        settings,
        name,
        AGENT_LAYER.format(base=base_id, tools_dir=TOOLS_DIR),
        lambda: {"tools/" + inner.removeprefix(TOOLS_DIR + "/"): source for source, inner in files.values()},
        labels={
            "isobench.kind": "agent",
            "isobench.base_image": base_image,
            "isobench.base_image_id": base_id,
            "isobench.tools": json.dumps(
                {tool: dict(zip(("path", "sha256"), v, strict=True)) for tool, v in digests.items()},
                sort_keys=True,
            ),
        },
        network=False,  # copying files needs nothing from outside
        progress=progress,
    )
    record_use(settings, name)
    return name, {tool: inner for tool, (_, inner) in files.items()}


# -- least-recently-used pruning ----------------------------------------------------------------


def usage_file(settings: Settings) -> Path:
    return settings.cache_dir / "images" / "last-used.json"


def record_use(settings: Settings, image: str) -> None:
    """Remember when an image was last used (labels are immutable, so the record lives on the host)."""
    path = usage_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .repos import file_lock

    with file_lock(path.with_suffix(".lock")):
        data = _read_usage(path)
        data[image] = time.time()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)


def _read_usage(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def free_bytes(client: Any) -> int:
    """Free space where the engine keeps its images (the engine is assumed to run on this host)."""
    root = client.info().get("DockerRootDir") or "/var/lib/docker"
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return shutil.disk_usage("/").free


def prune(
    client: Any,
    settings: Settings,
    *,
    min_free_bytes: int,
    keep: set[str] | None = None,
    repository: str | None = None,
) -> list[str]:
    """Remove the project's images, least recently used first, until ``min_free_bytes`` are free.

    Images in ``keep`` and images a container still uses are never removed; ``repository`` (e.g.
    ``isobench/vllm``) limits it to one repository's tags. Returns the removed tags.
    """
    import docker.errors

    used = _read_usage(usage_file(settings))
    # Tags containers were started from stay; the engine itself refuses to delete an image in use.
    in_use = {c["Image"] for c in client.api.containers(all=True)}
    candidates = []
    for image in client.images.list(filters={"label": "isobench.owner=pytest-isobench"}):
        for tag in image.tags:
            if tag in (keep or set()) or tag in in_use:
                continue
            if repository is not None and tag.rsplit(":", 1)[0] != repository:
                continue
            candidates.append((used.get(tag, 0.0), tag))
    removed = []
    for _, tag in sorted(candidates):
        if free_bytes(client) >= min_free_bytes:
            break
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(tag, noprune=False)
            removed.append(tag)
    return removed
