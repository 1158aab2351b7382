"""Task inputs: ``{dataset_dir}``, ``prefetch`` against a fake hub on 127.0.0.1, and a missing input as
a clear error before the agent or any benchmark runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_isobench.inputs import check_inputs, hub_cache, model_cached, with_dataset_dir
from pytest_isobench.tasks import BrokenTaskFile, load_task_file
from support import ANCHOR, load, write_source_task
from test_docker_sandbox import need_docker

COMMIT = "c0ffee" * 6 + "abcd"
DATASET = b'[{"conversations": [{"from": "human", "value": "hi"}]}]\n'
MODEL_FILES = {"config.json": b'{"model_type": "toy"}', "sub/tokenizer.json": b'{"vocab": {}}'}
TOKEN = "hf_canary_token_1234567890"
FAST = ["--isobench-rounds=1", "--isobench-warmup=0", "-p", "no:cacheprovider"]
INPUTS = """
[inputs]
datasets = [{repo = "org/sharegpt", file = "data/share.json"}]
models = ["org/tiny-model"]
"""


@dataclass
class FakeHub:
    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, authorization)
    cdn: str = ""  # another server the hub redirects downloads to


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """The three hub routes prefetch uses: a dataset file, a model's file list, a model file."""
    files = {
        "/datasets/org/sharegpt/resolve/main/data/share.json": DATASET,
        "/api/models/org/tiny-model/revision/main": json.dumps(
            {"id": "org/tiny-model", "sha": COMMIT, "siblings": [{"rfilename": name} for name in MODEL_FILES]}
        ).encode(),
        # huggingface_hub lists the files of the commit (recursively) before it downloads them.
        f"/api/models/org/tiny-model/tree/{COMMIT}": json.dumps(
            [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in MODEL_FILES.items()
            ]
        ).encode(),
        **{f"/org/tiny-model/resolve/{COMMIT}/{name}": data for name, data in MODEL_FILES.items()},
    }
    hub = FakeHub("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = self._answer()
            if data:
                self.wfile.write(data)

        def do_HEAD(self) -> None:  # huggingface_hub asks for the metadata first
            self._answer()

        def _answer(self) -> bytes | None:
            path = self.path.split("?", 1)[0]
            hub.requests.append((path, self.headers.get("Authorization", "")))
            if path == "/datasets/org/moved/resolve/main/share.json":  # to a CDN: another host
                self.send_response(302)
                self.send_header("Location", f"{hub.cdn}/blob/share.json")
                self.end_headers()
                return None
            if path.startswith("/api/models/org/gated"):
                self.send_response(401)
                self.end_headers()
                return None
            data = files.get(path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            if data is not None:
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            return data

        def log_message(self, *args: object) -> None:
            pass

    class Cdn(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hub.requests.append(("cdn:" + self.path, self.headers.get("Authorization", "")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATASET)))
            self.end_headers()
            self.wfile.write(DATASET)

        def log_message(self, *args: object) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler), ThreadingHTTPServer(("127.0.0.1", 0), Cdn)]
    hub.url, hub.cdn = (f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield hub
    for server in servers:
        server.shutdown()
        server.server_close()


def _reading_task(root: Path, command: str, inputs: str = INPUTS) -> Path:
    """toy-one whose benchmark command reads a dataset through {dataset_dir}."""
    task_file = write_source_task(root, "toy-one")
    plain = 'command = "python bench.py --output-json {result_dir}/result.json"'
    task_file.write_text(task_file.read_text().replace(plain, f'command = "{command}"') + inputs)
    return task_file


def _tasks(root: Path, *ids: str, inputs: str = INPUTS) -> Path:
    for task_id in ids:
        task_file = write_source_task(root, task_id)
        task_file.write_text(task_file.read_text() + inputs)
    return root


def _prefetch(hub: FakeHub, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``prefetch`` over plain HTTP: a stand-in module hides huggingface_hub where it is installed."""
    block = tmp_path / "no-hf-hub"
    block.mkdir(exist_ok=True)
    (block / "huggingface_hub.py").write_text('raise ImportError("hidden by the test")\n')
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(block),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "prefetch", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_prefetch_fills_both_caches_and_then_finds_them(fake_hub: FakeHub, tmp_path: Path) -> None:
    _tasks(tmp_path / "tasks", "toy-one")
    where = ["--tasks", "tasks", "--model-cache", "models"]
    before = _prefetch(fake_hub, tmp_path, *where, "--dry-run")
    assert before.returncode == 1 and "2 input(s) missing" in before.stdout, before.stdout + before.stderr
    result = _prefetch(fake_hub, tmp_path, *where, "-k", "toy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / ".isobench/cache/datasets/share.json").read_bytes() == DATASET
    snapshot = tmp_path / "models/hub/models--org--tiny-model/snapshots" / COMMIT
    assert {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()} == set(
        MODEL_FILES
    )
    assert (tmp_path / "models/hub/models--org--tiny-model/refs/main").read_text() == COMMIT
    assert all(auth == f"Bearer {TOKEN}" for _, auth in fake_hub.requests)  # gated models need the token
    assert TOKEN not in result.stdout + result.stderr
    assert not list((tmp_path / ".isobench/cache/datasets").glob(".*"))  # no partial file left
    # Cached now: nothing is downloaded again, and the check passes.
    fake_hub.requests.clear()
    again = _prefetch(fake_hub, tmp_path, *where, "toy-one")
    assert again.returncode == 0 and fake_hub.requests == [], again.stdout
    assert "cached" in again.stdout
    after = _prefetch(fake_hub, tmp_path, *where, "--dry-run")
    assert after.returncode == 0 and "0 input(s) missing" in after.stdout


def test_prefetch_selects_tasks_like_pytest(fake_hub: FakeHub, tmp_path: Path) -> None:
    _tasks(tmp_path / "tasks", "toy-one")
    _tasks(tmp_path / "tasks", "toy-two", inputs='\n[inputs]\nmodels = ["org/gated-model"]\n')
    result = _prefetch(fake_hub, tmp_path, "--tasks", "tasks", "-k", "one and toy")
    assert result.returncode == 0, result.stderr
    assert not any("gated" in path for path, _ in fake_hub.requests)
    gated = _prefetch(fake_hub, tmp_path, "--tasks", "tasks", "-m", "toy", "-k", "two")
    assert gated.returncode == 1
    assert "HTTP 401" in gated.stderr and "HF_TOKEN" in gated.stderr and TOKEN not in gated.stderr
    for args, message in (
        (["toy-nine"], "no task with id toy-nine"),
        (["-k", "nothing"], "no task matches"),
        (["-k", "toy and ("], "bad selection expression"),
    ):
        bad = _prefetch(fake_hub, tmp_path, "--tasks", "tasks", *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


def test_unreachable_hub_is_a_clear_error(tmp_path: Path) -> None:
    _tasks(tmp_path / "tasks", "toy-one")
    closed = FakeHub("http://127.0.0.1:9")  # the discard port: nothing listens
    result = _prefetch(closed, tmp_path, "--tasks", "tasks")
    assert result.returncode == 1
    assert (
        "cannot reach http://127.0.0.1:9/datasets/org/sharegpt/resolve/main/data/share.json" in result.stderr
    )


def test_missing_input_errors_before_the_agent_runs(pytester: pytest.Pytester, fake_hub: FakeHub) -> None:
    bench = "python bench.py --output-json {result_dir}/result.json"
    command = f"cat {{dataset_dir}}/share.json && echo HF_HOME=$HF_HOME && {bench}"
    _reading_task(pytester.path / "tasks", command)
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    models = pytester.path / "models"
    result = pytester.runpytest("--isobench-agent=human", *FAST, f"--isobench-model-cache={models}")
    result.assert_outcomes(errors=1)
    datasets = pytester.path / ".isobench" / "cache" / "datasets"
    result.stdout.fnmatch_lines(
        [
            "*toy-one: input(s) not cached: dataset org/sharegpt/data/share.json"
            f" (expected at {datasets}/share.json); model org/tiny-model"
            f" (expected at {models}/hub/models--org--tiny-model)*",
            f"*python -m pytest_isobench prefetch toy-one --dataset-cache {datasets} --model-cache {models}*",
        ]
    )
    assert "at work" not in result.stdout.str()  # the agent never started
    (run,) = (pytester.path / ".isobench" / "runs").iterdir()
    assert not (run / "toy-one" / "human" / "agent.json").exists()
    # Once prefetched, the same run works, and the benchmark reads the file through {dataset_dir}.
    fetched = _prefetch(fake_hub, pytester.path, "toy-one", "--model-cache", str(models))
    assert fetched.returncode == 0, fetched.stderr
    result = pytester.runpytest("--isobench-agent=human", *FAST, f"--isobench-model-cache={models}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, result.outlines
    (run,) = [p for p in (pytester.path / ".isobench" / "runs").iterdir() if p.name != run.name]
    stdout = next((run / "toy-one" / "human" / "bench").rglob("stdout.txt")).read_bytes()
    assert stdout.startswith(DATASET + f"HF_HOME={models}\n".encode())  # the engines find prefetched models


def test_dataset_cache_option_moves_dataset_dir(pytester: pytest.Pytester, tmp_path: Path) -> None:
    command = (
        "cat {dataset_dir}/share.json > /dev/null && python bench.py --output-json {result_dir}/result.json"
    )
    inputs = '\n[inputs]\ndatasets = [{repo = "org/d", file = "share.json"}]\n'
    _reading_task(pytester.path / "tasks", command, inputs)
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    elsewhere = tmp_path / "datasets"
    elsewhere.mkdir()
    (elsewhere / "share.json").write_bytes(DATASET)
    result = pytester.runpytest("--isobench-agent=human", *FAST, f"--isobench-dataset-cache={elsewhere}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, result.outlines


def test_dataset_dir_needs_a_declared_dataset(tmp_path: Path) -> None:
    task_file = write_source_task(tmp_path, "toy-one")
    task_file.write_text(
        task_file.read_text().replace("python bench.py", "cat {dataset_dir}/x.json; python bench.py")
    )
    broken = load_task_file(task_file)
    assert isinstance(broken, BrokenTaskFile)
    assert "uses {dataset_dir} but [inputs] declares no dataset" in broken.message


def test_inputs_schema_and_check(tmp_path: Path) -> None:
    task_file = write_source_task(tmp_path, "toy-one")
    body = task_file.read_text()
    for bad, message in (
        ('[{repo = "org/d", file = "../etc/passwd"}]', "must be a path inside the dataset repository"),
        ('[{repo = "not a repo", file = "x.json"}]', "should match pattern"),
        (
            '[{repo = "a/b", file = "x.json"}, {repo = "c/d", file = "sub/x.json"}]',
            "share the cache file name",
        ),
    ):
        task_file.write_text(body + f"\n[inputs]\ndatasets = {bad}\n")
        entry = load_task_file(task_file)
        assert isinstance(entry, BrokenTaskFile) and message in entry.message, entry
    task_file.write_text(body + INPUTS)
    task = load(task_file)
    with pytest.raises(ValueError, match=r"input\(s\) not cached: dataset org/sharegpt/data/share.json"):
        check_inputs(task, tmp_path / "d", tmp_path / "m")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "share.json").write_bytes(DATASET)
    snapshot = tmp_path / "m" / "hub" / "models--org--tiny-model" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    assert not model_cached(hub_cache(tmp_path / "m"), "org/tiny-model")  # an empty snapshot is not a model
    (snapshot / "config.json").write_text("{}")
    check_inputs(task, tmp_path / "d", tmp_path / "m")
    bench = task.benchmark.model_copy(update={"command": "x --dataset-path {dataset_dir}/share.json {port}"})
    assert with_dataset_dir(bench, Path("/data")).command == "x --dataset-path /data/share.json {port}"


def test_docker_measurements_read_the_dataset_cache(pytester: pytest.Pytester, tmp_path: Path) -> None:
    need_docker()
    command = "cat {dataset_dir}/share.json && python bench.py --output-json {result_dir}/result.json"
    _reading_task(
        pytester.path / "tasks", command, '\n[inputs]\ndatasets = [{repo = "org/d", file = "share.json"}]\n'
    )
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "share.json").write_bytes(DATASET)
    result = pytester.runpytest(
        "--isobench-agent=human", "--isobench-backend=docker", *FAST, f"--isobench-dataset-cache={datasets}"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, result.outlines
    (run,) = (pytester.path / ".isobench" / "runs").iterdir()
    for stdout in (run / "toy-one" / "human" / "bench").rglob("stdout.txt"):
        assert stdout.read_bytes().startswith(DATASET)


def test_prefetch_uses_huggingface_hub_for_models_when_installed(fake_hub: FakeHub, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    _tasks(tmp_path / "tasks", "toy-one")
    env = {"PATH": "/usr/bin:/bin", "HF_ENDPOINT": fake_hub.url, "HF_TOKEN": TOKEN, "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "prefetch", "--tasks", "tasks", "--model-cache", "models"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "downloading with huggingface_hub" in result.stdout
    snapshot = tmp_path / "models/hub/models--org--tiny-model/snapshots" / COMMIT
    assert (snapshot / "sub" / "tokenizer.json").read_bytes() == MODEL_FILES["sub/tokenizer.json"]
    assert model_cached(hub_cache(tmp_path / "models"), "org/tiny-model")


def test_token_is_not_sent_to_a_redirect_target(fake_hub: FakeHub, tmp_path: Path) -> None:
    inputs = '\n[inputs]\ndatasets = [{repo = "org/moved", file = "share.json"}]\n'
    _tasks(tmp_path / "tasks", "toy-one", inputs=inputs)
    result = _prefetch(fake_hub, tmp_path, "--tasks", "tasks")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".isobench/cache/datasets/share.json").read_bytes() == DATASET
    assert fake_hub.requests == [
        ("/datasets/org/moved/resolve/main/share.json", f"Bearer {TOKEN}"),
        ("cdn:/blob/share.json", ""),
    ]
