"""CLI agents under the docker backend: the CLI baked into an agent layer, run in the container.

A CLI agent defined here runs a small POSIX shell script as its "CLI" through the real pipeline: the
script is copied into the agent layer (``/opt/isobench/tools``), runs as the container's non-root user
with no host path in sight, asks a fake model server on the host (reached through the bridge
gateway) for its usage, edits the working copy and writes nested files, a pipe, a socket and an
absolute link into its home. The home's config goes in and its files come back; the layer is built
once and found again by the next task; its tag follows the tool's content. Last, the real Claude Code
CLI fixes a smoke task from its layer, talking to the fake Anthropic API on the bridge gateway.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from fake_anthropic_agent import FakeAnthropicAgent
from http_fake import HttpFake
from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.claude_code import bundled_cli
from pytest_isobench.agents.cli import (
    Attempt,
    AttemptFiles,
    CliAgent,
    CliOptions,
    Launch,
    Tokens,
    executable,
    jsonl_events,
)
from pytest_isobench.options import Settings
from pytest_isobench.pipeline import Job, run_job
from pytest_isobench.pricing import cost_usd
from pytest_isobench.sandbox import engine, images
from pytest_isobench.sandbox.base import SandboxError
from pytest_isobench.sandbox.docker import DockerSandbox, bridge_gateway
from pytest_isobench.tasks import LoadedTask
from support import load, write_source_task
from test_docker_sandbox import docker_settings, need_docker

USAGE = {"input_tokens": 1234, "output_tokens": 56, "cached_tokens": 7, "cost_usd": 0.0123}

# The "CLI": proves where it runs, reads its config from the home, asks the model for its usage,
# edits the working copy, and leaves nested files and things that cannot be copied in its home.
FAKE_CLI = r"""#!/bin/sh
# fake coding CLI {token}
set -e
model="$(cat "$HOME/config/fake.conf")"
sed -i s/0.06/0.02/ work.py
mkdir -p "$HOME/.fake/sessions/s1" "$TMPDIR/scratch"
printf '{{"turns": 3}}\n' > "$HOME/.fake/sessions/s1/session.json"
echo tmp > "$TMPDIR/scratch/note.txt"
mkfifo "$HOME/a-pipe"
ln -s /etc/passwd "$HOME/absolute-link"
(cd "$HOME" && python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("a-socket")')
usage="$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/usage", timeout=20).read().decode())' "$FAKE_BASE_URL")"
if [ -e "$HOST_CLI" ]; then seen=yes; else seen=no; fi
printf '{{"type": "result", "self": "%s", "uid": %s, "host_cli_visible": "%s",' "$0" "$(id -u)" "$seen"
printf ' "model": "%s", "usage": %s}}\n' "$model" "$usage"
"""


class FakeModel(HttpFake):
    """A model API stand-in on the host's bridge address: ``GET /usage`` answers what it spent."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = json.dumps(USAGE).encode()
                self.send_response(200 if self.path == "/usage" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        # A container on the bridge network cannot reach the host's 127.0.0.1: listen on the gateway.
        super().__init__(Handler, host=bridge_gateway())
        self.url = self.root


class FakeCli(CliAgent):
    """A CLI agent whose CLI is the script above."""

    family = "fake-cli"
    default_model = "fake-model-1"
    install_hint = "write the test's script"

    def __init__(self, name: str, model: str | None, base_url: str) -> None:
        super().__init__(name, model)
        self.base_url = base_url

    def find_cli(self, given: str | None) -> str:
        if given is None:
            raise ValueError(f"no fake CLI: {self.install_hint}")
        return executable(given, "--fake-cli")

    def launch(self, ctx: SolveContext, home: Path, cli: str) -> Launch:
        return Launch(
            argv=[cli, "--prompt-file", str(ctx.prompt_file)],
            env={"FAKE_BASE_URL": self.base_url, "HOST_CLI": str(self.cli)},
            files={"config/fake.conf": self.model},
        )

    def parse(self, files: AttemptFiles) -> Attempt:
        events = [e for e in jsonl_events(files.stdout) if e.get("type") == "result"]
        if not events:
            return Attempt("crashed", error=files.stderr.read_text())
        usage = events[-1]["usage"]
        session = files.home / ".fake" / "sessions" / "s1" / "session.json"
        return Attempt(
            "completed",
            turns=json.loads(session.read_text())["turns"],
            tokens=Tokens(usage["input_tokens"], usage["output_tokens"], usage["cached_tokens"]),
            cost_usd=usage["cost_usd"],
            model=events[-1]["model"],
            steps=[{"kind": "model", "text": "edited work.py"}],
            keep=[session],
        )


def fake_cli(folder: Path, token: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "fake-cli"
    script.write_text(FAKE_CLI.format(token=token))
    script.chmod(0o755)
    return script


@pytest.fixture
def agent_tags() -> Iterator[list[str]]:
    """Agent-layer tags a test made; removed afterwards whatever happened."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        with contextlib.suppress(Exception):
            engine.client().images.remove(tag, force=True)


def layer_tag(settings: Settings, script: Path) -> str:
    base_id = engine.client().images.get(images.DEFAULT_BASE_IMAGE).id
    files = images.tool_files({"cli": script})
    digests = {name: (inner, images.tool_digest(settings, src)) for name, (src, inner) in files.items()}
    return images.agent_image_name(base_id, digests)


def test_a_cli_agent_runs_from_its_layer_in_the_container(tmp_path: Path, agent_tags: list[str]) -> None:
    need_docker()
    script = fake_cli(tmp_path / "host-tools", secrets.token_hex(8))
    run_id = "test-" + secrets.token_hex(4)
    settings = replace(docker_settings(tmp_path), agent_network="bridge", run_id=run_id)
    tag = layer_tag(settings, script)
    agent_tags.append(tag)
    first = write_source_task(tmp_path / "tasks", "toy-first", timeout_s=20)
    second = write_source_task(tmp_path / "tasks", "toy-second", timeout_s=20)
    lines: dict[str, list[str]] = {"toy-first": [], "toy-second": []}
    outcomes, jobs = {}, {}
    with FakeModel() as model:
        for task_file in (first, second):
            agent = FakeCli("fake-cli", "model-xyz", model.url)
            agent.configure(CliOptions(cli_paths={"fake-cli": str(script)}))
            task = load(task_file)
            job = Job(LoadedTask(task, task_file), agent, "fake-cli", settings, run_id, DockerSandbox)
            outcomes[task.id] = run_job(job, progress=lines[task.id].append)
            jobs[task.id] = job
            if task.id == "toy-first":
                built = engine.client().images.get(tag)
    outcome, job = outcomes["toy-first"], jobs["toy-first"]
    stdout = (job.artifacts / "agent.stdout.txt").read_text()
    result = json.loads(stdout.strip().splitlines()[-1])
    # it ran inside the container, from the layer, as the unprivileged user, with no host path to see
    assert result["self"] == f"{images.TOOLS_DIR}/cli/fake-cli", stdout
    assert result["uid"] != 0 and result["host_cli_visible"] == "no", result
    assert result["model"] == "model-xyz"  # the config written into the home on the host went in
    assert model.requests == ["/usage", "/usage"]  # one call per task, through the bridge gateway
    # what it spent, as the fake model reported it; its session file kept, the home removed
    run = outcome.agent_run
    assert run["stop_reason"] == "completed" and run["turns"] == 3 and run["cli"] == "fake-cli"
    assert run["tokens"] == {"input": 1234, "output": 56, "cached": 7}
    assert run["cost_usd"] == 0.0123 and run["cost_source"] == "cli"
    assert json.loads((job.artifacts / "agent.session.json").read_text()) == {"turns": 3}
    assert not (job.artifacts / "agent-home").exists()
    trajectory = json.loads((job.artifacts / "trajectory.json").read_text())
    assert trajectory["totals"]["tokens"] == run["tokens"]
    # the edit is the patch, and it was measured
    assert outcome.patch["files"] == ["work.py"], outcome.patch
    assert outcome.hard_detail["agent_vs_baseline_pct"] > 20, outcome.hard_detail
    assert engine.count_containers(run_id) == 0
    # the first task built the layer (with progress lines); the second found it: no build, same image
    baking = f"baking the agent's tools (cli 0 MB) into {tag}"
    assert any(line.startswith(baking) for line in lines["toy-first"])
    assert any(line.startswith(f"building image {tag}") for line in lines["toy-first"])
    assert not [line for line in lines["toy-second"] if "building" in line or "baking" in line]
    assert engine.client().images.get(tag).id == built.id
    assert outcomes["toy-second"].agent_run["tokens"] == run["tokens"]
    labels = built.labels
    assert labels["isobench.owner"] == "pytest-isobench" and labels["isobench.kind"] == "agent"
    assert json.loads(labels["isobench.tools"])["cli"]["path"] == result["self"]
    assert tag in json.loads(images.usage_file(settings).read_text())  # pruning knows when it was used


def test_the_home_comes_back_whole_and_odd_files_do_not_break_the_copy(
    tmp_path: Path, agent_tags: list[str]
) -> None:
    """Nested files come back; a pipe and an absolute link are skipped; the engine drops the socket."""
    need_docker()
    task_file = write_source_task(tmp_path / "tasks", "toy-home", timeout_s=20)
    run_id = "test-" + secrets.token_hex(4)
    settings = replace(docker_settings(tmp_path), agent_network="bridge", run_id=run_id)
    script = fake_cli(tmp_path / "host-tools", secrets.token_hex(8))
    agent_tags.append(layer_tag(settings, script))
    from pytest_isobench.sandbox.base import SandboxSpec
    from pytest_isobench.sandbox.repos import materialise

    task = load(task_file)
    repo = materialise(task, task_file, settings.cache_dir / "repos")
    workspace = settings.work_dir / run_id / task.id / "fake"
    spec = SandboxSpec(
        task, task_file, repo, workspace, settings, agent_tools={"cli": script}, agent_network="bridge"
    )
    box = DockerSandbox(spec)
    try:
        workdir = box.agent_workdir()
        home = settings.runs_dir / run_id / task.id / "fake" / "agent-home"
        (home / "config").mkdir(parents=True)
        (home / "config" / "fake.conf").write_text("from-the-host")
        (home / "config" / "fake.conf").chmod(0o600)
        (home / "tmp").mkdir()
        env = {**box.environment(), "HOME": str(home), "TMPDIR": str(home / "tmp")}
        with FakeModel() as model:
            env["FAKE_BASE_URL"], env["HOST_CLI"] = model.url, str(script)
            result = box.run(
                box.tool_paths["cli"],
                cwd=workdir,
                env=env,
                timeout_s=60,
                stdout_path=tmp_path / "out.txt",
                stderr_path=tmp_path / "err.txt",
            )
        assert result.returncode == 0, (tmp_path / "err.txt").read_text()
        assert json.loads((home / ".fake" / "sessions" / "s1" / "session.json").read_text()) == {"turns": 3}
        assert (home / "tmp" / "scratch" / "note.txt").read_text() == "tmp\n"
        assert (home / "config" / "fake.conf").read_text() == "from-the-host"
        for odd in ("a-pipe", "absolute-link", "a-socket"):
            assert not (home / odd).exists() and not (home / odd).is_symlink(), odd
        assert '"model": "from-the-host"' in (tmp_path / "out.txt").read_text()
    finally:
        box.close()
    assert engine.count_containers(run_id) == 0


def test_the_layer_tag_follows_the_tools_content(tmp_path: Path, agent_tags: list[str]) -> None:
    need_docker()
    client = engine.client()
    settings = docker_settings(tmp_path)
    script = fake_cli(tmp_path / "host-tools", secrets.token_hex(8))
    first, paths = images.ensure_agent_image(client, settings, images.DEFAULT_BASE_IMAGE, {"cli": script})
    agent_tags.append(first)
    assert paths == {"cli": f"{images.TOOLS_DIR}/cli/fake-cli"}
    again, _ = images.ensure_agent_image(client, settings, images.DEFAULT_BASE_IMAGE, {"cli": script})
    assert again == first
    script.write_text(script.read_text() + "# a new version\n")
    second, _ = images.ensure_agent_image(client, settings, images.DEFAULT_BASE_IMAGE, {"cli": script})
    agent_tags.append(second)
    assert second != first and first.startswith(images.AGENT_IMAGE_REPOSITORY + ":")
    out = client.containers.run(
        second,
        ["sh", "-c", f"ls -l {images.TOOLS_DIR}/cli/fake-cli; tail -n 1 {images.TOOLS_DIR}/cli/fake-cli"],
        remove=True,
        network_mode="none",
        user="1000:1000",
        labels=engine.labels("test", "agent-layer", "check"),
    ).decode()
    assert out.startswith("-rwxr-xr-x") and "root root" in out and out.endswith("# a new version\n"), out


def test_two_workers_building_the_same_layer_at_once_get_one_build(
    tmp_path: Path, agent_tags: list[str]
) -> None:
    need_docker()
    client = engine.client()
    settings = docker_settings(tmp_path)
    script = fake_cli(tmp_path / "host-tools", secrets.token_hex(8))
    agent_tags.append(layer_tag(settings, script))
    lines: list[str] = []
    tags: list[str] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            tags.append(
                images.ensure_agent_image(
                    client, settings, images.DEFAULT_BASE_IMAGE, {"cli": script}, lines.append
                )[0]
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(tags) == 2 and tags[0] == tags[1] == agent_tags[0]
    assert len([line for line in lines if line.startswith("building image")]) == 1, lines


def test_a_tool_is_hashed_once_per_version(tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    tool = tmp_path / "cli"
    tool.write_bytes(b"version 1")
    assert images.tool_digest(settings, tool) == hashlib.sha256(b"version 1").hexdigest()
    # The record is what answers while the file is unchanged (a 400 MB CLI is not read again).
    record = settings.cache_dir / "images" / images.TOOL_HASHES
    data = json.loads(record.read_text())
    (key,) = data
    record.write_text(json.dumps({key: "remembered"}))
    assert images.tool_digest(settings, tool) == "remembered"
    tool.write_bytes(b"version 2!")  # another size and mtime: hashed again, the stale entry dropped
    assert images.tool_digest(settings, tool) == hashlib.sha256(b"version 2!").hexdigest()
    assert len(json.loads(record.read_text())) == 1


def test_a_folder_or_a_virtual_environment_tool_is_a_clear_error(tmp_path: Path) -> None:
    venv = tmp_path / "trae-venv"
    (venv / "bin").mkdir(parents=True)
    with pytest.raises(SandboxError, match=r"'cli' is a folder .*--isobench-backend=local"):
        images.tool_files({"cli": venv})
    with pytest.raises(SandboxError, match="is not a file"):
        images.tool_files({"cli": tmp_path / "missing"})
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    entry = venv / "bin" / "trae-cli"
    entry.write_text(f"#!{venv}/bin/python\nimport sys\n")
    with pytest.raises(SandboxError, match=r"Python virtual environment .*--isobench-backend=local"):
        images.tool_files({"cli": entry})
    plain = tmp_path / "plain-cli"
    plain.write_text("#!/bin/sh\necho hi\n")
    assert images.tool_files({"cli": plain}) == {"cli": (plain, f"{images.TOOLS_DIR}/cli/plain-cli")}


# -- the real Claude Code CLI in its layer, through the model gateway to the fake Anthropic API --------


def test_claude_code_fixes_a_smoke_task_in_its_container(tmp_path: Path) -> None:
    """``claude-code`` under the docker backend, by default: the bundled CLI baked into the agent layer
    runs in a container with no network and reaches the fake model (on this host's loopback) only
    through the model gateway, which holds the key; it applies the smoke task's fix and the task passes,
    with the cost the gateway counted from the upstream's usage."""
    need_docker()
    found = shutil.which("claude") or bundled_cli()
    if found is None:
        pytest.skip("no claude CLI: pip install 'pytest-isobench[agents]'")
    claude = Path(found).resolve()
    canary = f"sk-ant-canary-{secrets.token_hex(12)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ISOBENCH_", "ANTHROPIC_"))}
    env.update(ANTHROPIC_API_KEY=canary, CLAUDE_CODE_MAX_RETRIES="1")
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "pytest", "--isobench-agent=claude-code", "-m", "smoke",
            "-k", "smoke-latency", "-p", "no:cacheprovider", "--isobench-backend=docker",
            f"--isobench-claude-cli={claude}",
            f"--isobench-runs-dir={tmp_path / 'runs'}", f"--isobench-cache-dir={tmp_path / 'cache'}",
            "--json-report", f"--json-report-file={report}"]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    with FakeAnthropicAgent("fix") as fake:  # on 127.0.0.1: no container can reach it but the gateway
        env["ANTHROPIC_BASE_URL"] = fake.base_url

        def smoke_run(*extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
            done = subprocess.run(
                [*argv, *extra], cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False
            )
            (test,) = json.loads(report.read_text())["tests"]
            return done, test["user_properties"][0]["isobench"]

        done, outcome = smoke_run()
        if outcome["hard"] not in ("beats", "similar") and outcome["inconclusive"]:
            # the harness called the verdict noise (a busy machine): measure again
            done, outcome = smoke_run(f"--isobench-run-id={outcome['run_id']}", "--isobench-remeasure")
        totals, requests = fake.totals, fake.messages()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert outcome["hard"] in ("beats", "similar") and outcome["correctness"] == "pass", outcome
    assert requests and all(r.headers.get("x-api-key") == canary for r in requests)
    run = outcome["agent_run"]
    assert run["stop_reason"] == "completed" and run["cli"] == "claude-code" and run["returncode"] == 0
    assert run["tokens"] == {
        "input": totals.all_input,
        "output": totals.output_tokens,
        "cached": totals.cache_read_input_tokens,
    }
    assert run["cli_tokens"] == run["tokens"]  # what the CLI counted in its container, and the gateway
    fresh = totals.input_tokens + totals.cache_creation_input_tokens
    upstream_cost = cost_usd("claude-sonnet-4-5", fresh + totals.cache_read_input_tokens,
                             totals.output_tokens, totals.cache_read_input_tokens)  # fmt: skip
    assert run["cost_source"] == "gateway" and run["cost_usd"] == pytest.approx(upstream_cost, abs=2e-6)
    assert run["gateway"]["calls"] == len(requests) and run["gateway"]["errors"] == 0
    # It ran from the agent layer: an image of this CLI's content, used by this run.
    with claude.open("rb") as binary:
        digest = hashlib.file_digest(binary, "sha256").hexdigest()
    used = json.loads(images.usage_file(docker_settings(tmp_path)).read_text())
    layers = [tag for tag in used if tag.startswith(images.AGENT_IMAGE_REPOSITORY + ":")]
    assert len(layers) == 1, used
    tools = json.loads(engine.client().images.get(layers[0]).labels["isobench.tools"])
    assert tools == {"cli": {"path": f"{images.TOOLS_DIR}/cli/{claude.name}", "sha256": digest}}
    art = Path(outcome["artifacts"])
    assert not (art / "agent-home").exists() and engine.count_containers(outcome["run_id"]) == 0
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert not leaked and canary not in done.stdout + done.stderr
