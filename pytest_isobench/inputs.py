"""A task's inputs (benchmark datasets, model repositories): where they are cached, whether they are
there, and fetching them while online, so a task can later run on a machine without network.

Tasks declare them under ``[inputs]``. Datasets are single files of a Hugging Face dataset
repository, kept flat in the dataset cache (``--isobench-dataset-cache``, the commands'
``{dataset_dir}``). Models are kept in the Hugging Face hub cache layout
(``<HF_HOME>/hub/models--org--name/snapshots/<commit>/...``) of the model cache
(``--isobench-model-cache``, else ``HF_HUB_CACHE`` / ``HF_HOME`` / ``~/.cache/huggingface``), which is
where the serving engines look when they run offline.

Fetching uses ``huggingface_hub`` for models when it is installed (resumable, faster transfers) and
plain HTTP otherwise; dataset files are always one HTTP download. The hub's address is
``HF_ENDPOINT`` (default https://huggingface.co), a token ``HF_TOKEN`` (gated models); the token is
sent, never printed.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tasks import Benchmark, DatasetFile, Task

DATASET_PLACEHOLDER = "{dataset_dir}"
DEFAULT_ENDPOINT = "https://huggingface.co"
PREFETCH = "python -m pytest_isobench prefetch"
CHUNK = 1 << 20
TIMEOUT_S = 60.0

Say = Callable[[str], None]


class MissingInput(ValueError):
    """A declared input is not in its cache; the message names each file and the prefetch command."""


class FetchError(RuntimeError):
    """Downloading an input failed; the message says which and why (never the token)."""


def hub_cache(model_cache: Path | None) -> Path:
    """The hub cache folder the engines read models from."""
    if model_cache is not None:
        return model_cache / "hub"
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or str(Path("~/.cache/huggingface").expanduser())
    return Path(home).expanduser() / "hub"


def model_folder(hub: Path, repo_id: str) -> Path:
    return hub / ("models--" + repo_id.replace("/", "--"))


def model_cached(hub: Path, repo_id: str) -> bool:
    """A snapshot of the model is in the hub cache (what an offline engine needs)."""
    snapshots = model_folder(hub, repo_id) / "snapshots"
    return snapshots.is_dir() and any(p.is_dir() and any(p.iterdir()) for p in snapshots.iterdir())


@dataclass(frozen=True)
class Needed:
    """One input of one task and where it belongs."""

    kind: str  # "dataset" or "model"
    name: str  # dataset repo/file, or the model id
    path: Path  # the dataset file, or the model's folder in the hub cache
    present: bool


def needed(task: Task, dataset_dir: Path, hub: Path) -> list[Needed]:
    found = [
        Needed("dataset", f"{d.repo}/{d.file}", dataset_dir / d.name, (dataset_dir / d.name).is_file())
        for d in task.inputs.datasets
    ]
    found += [Needed("model", m, model_folder(hub, m), model_cached(hub, m)) for m in task.inputs.models]
    return found


def check_inputs(task: Task, dataset_dir: Path, model_cache: Path | None) -> None:
    """Raise MissingInput naming every input of the task that is not cached, and how to fetch it."""
    missing = [n for n in needed(task, dataset_dir, hub_cache(model_cache)) if not n.present]
    if not missing:
        return
    listed = "; ".join(f"{n.kind} {n.name} (expected at {n.path})" for n in missing)
    flags = f" --dataset-cache {dataset_dir}"
    if model_cache is not None:
        flags += f" --model-cache {model_cache}"
    raise MissingInput(
        f"{task.id}: input(s) not cached: {listed}. Fetch them while online with"
        f" `{PREFETCH} {task.id}{flags}`, then run again (it works offline from then on)"
    )


def with_dataset_dir(bench: Benchmark, dataset_dir: Path) -> Benchmark:
    """The benchmark with ``{dataset_dir}`` filled in its server and client commands."""
    filled = {
        name: text.replace(DATASET_PLACEHOLDER, str(dataset_dir))
        for name in ("command", "server")
        if (text := getattr(bench, name)) is not None and DATASET_PLACEHOLDER in text
    }
    return bench.model_copy(update=filled) if filled else bench


# -- fetching ---------------------------------------------------------------------------------------


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _request(url: str, token: str | None) -> urllib.request.Request:
    headers = {"User-Agent": "pytest-isobench-prefetch"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, headers=headers)


class _TokenStaysOnHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects (the hub sends downloads to a CDN), but never take the token to another host."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_TokenStaysOnHost)


def _open(url: str, token: str | None, what: str) -> Any:
    try:
        return _OPENER.open(_request(url, token), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        hint = ""
        if exc.code in (401, 403):
            hint = " (a gated or private repository: accept its license on the hub and set HF_TOKEN)"
        elif exc.code == 404:
            hint = " (no such repository, revision or file)"
        raise FetchError(f"{what}: {url} answered HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"{what}: cannot reach {url}: {reason} (is this machine online? HF_ENDPOINT?)"
        ) from None


def _download(url: str, dest: Path, token: str | None, what: str) -> int:
    """Stream ``url`` into ``dest`` (written beside it, then renamed: never a half file in place)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    size = 0
    try:
        with _open(url, token, what) as response, partial.open("wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                size += len(chunk)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return size


def fetch_dataset(dataset: DatasetFile, dataset_dir: Path, *, token: str | None, say: Say) -> Path:
    dest = dataset_dir / dataset.name
    if dest.is_file():
        say(f"dataset {dataset.repo}/{dataset.file}: cached at {dest}")
        return dest
    quoted = urllib.parse.quote(dataset.file)
    url = f"{endpoint()}/datasets/{dataset.repo}/resolve/{dataset.revision}/{quoted}"
    say(f"dataset {dataset.repo}/{dataset.file}: downloading to {dest}")
    size = _download(url, dest, token, f"dataset {dataset.repo}/{dataset.file}")
    say(f"dataset {dataset.repo}/{dataset.file}: {size / 1e6:.1f} MB")
    return dest


def fetch_model(repo_id: str, hub: Path, *, token: str | None, say: Say, revision: str = "main") -> Path:
    folder = model_folder(hub, repo_id)
    if model_cached(hub, repo_id):
        say(f"model {repo_id}: cached at {folder}")
        return folder
    try:
        import huggingface_hub  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        say(
            f"model {repo_id}: downloading over HTTP to {folder}"
            " (huggingface_hub is not installed; with it, transfers resume and go faster)"
        )
        return _fetch_model_http(repo_id, hub, token=token, say=say, revision=revision)
    say(f"model {repo_id}: downloading with huggingface_hub to {folder}")
    try:
        # It reads HF_ENDPOINT itself, as the HTTP path does.
        huggingface_hub.snapshot_download(repo_id, revision=revision, cache_dir=str(hub), token=token or None)
    except Exception as exc:  # the library's own errors: HTTP, gated repositories, disk
        raise FetchError(f"model {repo_id}: {type(exc).__name__}: {exc}") from None
    return folder


def _fetch_model_http(repo_id: str, hub: Path, *, token: str | None, say: Say, revision: str) -> Path:
    """The hub's file list at a revision, each file into ``snapshots/<commit>/``, then ``refs/<revision>``."""
    what = f"model {repo_id}"
    with _open(f"{endpoint()}/api/models/{repo_id}/revision/{revision}", token, what) as response:
        try:
            info = json.loads(response.read())
            commit = str(info["sha"])
            files = [str(s["rfilename"]) for s in info.get("siblings") or []]
        except (ValueError, KeyError, TypeError) as exc:
            raise FetchError(f"{what}: the hub's answer has no commit and file list ({exc})") from None
    folder = model_folder(hub, repo_id)
    snapshot = folder / "snapshots" / commit
    staging = folder / "snapshots" / f".{commit}.{os.getpid()}.part"
    shutil.rmtree(staging, ignore_errors=True)
    total = 0
    try:
        for name in files:
            if name.startswith("/") or ".." in name.split("/"):
                raise FetchError(f"{what}: the hub lists an unsafe file name {name!r}")
            url = f"{endpoint()}/{repo_id}/resolve/{commit}/{urllib.parse.quote(name)}"
            total += _download(url, staging / name, token, f"{what}: {name}")
        if snapshot.exists():
            shutil.rmtree(snapshot)
        staging.rename(snapshot)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text(commit, encoding="utf-8")
    say(f"model {repo_id}: {len(files)} file(s), {total / 1e6:.1f} MB at revision {commit[:12]}")
    return folder


def prefetch(tasks: list[Task], dataset_dir: Path, model_cache: Path | None, say: Say) -> list[str]:
    """Fetch every input the tasks declare that is not cached yet; returns the problems (empty: done)."""
    token = os.environ.get("HF_TOKEN") or None
    hub = hub_cache(model_cache)
    problems: list[str] = []
    datasets = {(d.repo, d.file, d.revision): d for t in tasks for d in t.inputs.datasets}
    models = dict.fromkeys(m for t in tasks for m in t.inputs.models)
    for dataset in datasets.values():
        try:
            fetch_dataset(dataset, dataset_dir, token=token, say=say)
        except (FetchError, OSError) as exc:
            problems.append(str(exc))
    for model in models:
        try:
            fetch_model(model, hub, token=token, say=say)
        except (FetchError, OSError) as exc:
            problems.append(str(exc))
    return problems
