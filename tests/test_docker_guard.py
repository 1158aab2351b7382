"""Agents that attack the measurement, on the docker backend (source tasks and task images)."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.measure.cache import MeasurementCache, checksum
from pytest_isobench.pipeline import Job, run_job
from pytest_isobench.sandbox import engine
from pytest_isobench.sandbox.docker import DockerSandbox
from pytest_isobench.tasks import LoadedTask
from support import load, write_source_task
from test_docker_sandbox import docker_settings, need_docker
from test_docker_task_images import image_job, repo_name, write_git_task  # noqa: F401
from test_guard import FAKE_LATENCY, FAKE_TTFT, SMOKE

FAKE_BENCH = "sed -i 's|^avg = .*|avg = 1e-9|' bench.py && grep -q '^avg = 1e-9$' bench.py"


@pytest.fixture(autouse=True)
def _docker() -> None:
    need_docker()


def docker_job(tmp_path: Path, task_file: Path, spec: str, **overrides: object) -> Job:
    run_id = "test-" + secrets.token_hex(4)
    fields: dict[str, object] = {"rounds": 1, "warmup": 0, "agent": spec, "run_id": run_id, **overrides}
    settings = replace(docker_settings(tmp_path), **fields)  # type: ignore[arg-type]
    agent = build_agent(spec, agent_registry([]))
    return Job(LoadedTask(load(task_file), task_file), agent, spec, settings, run_id, DockerSandbox)


@pytest.mark.parametrize(
    ("task", "agent", "touched"),
    [
        ("smoke-latency", FAKE_LATENCY, ["benchmarks/benchmark_latency.py"]),
        ("smoke-serving", FAKE_TTFT, ["benchmarks/benchmark_serving.py"]),
    ],
)
def test_rewriting_the_smoke_benchmark_does_not_pass(
    tmp_path: Path, task: str, agent: str, touched: list[str]
) -> None:
    job = docker_job(tmp_path, SMOKE / f"{task}.toml", agent, rounds=2)
    outcome = run_job(job)
    assert outcome.agent_run["returncode"] == 0
    assert outcome.touches_benchmark == touched
    assert outcome.hard == "worse", outcome.hard_detail
    assert engine.count_containers(job.run_id) == 0


def test_the_measurement_cache_is_out_of_the_agents_reach(tmp_path: Path) -> None:
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=20)
    first = run_job(docker_job(tmp_path, toy, "human"))  # fills the cache with baseline and human
    cache = MeasurementCache(tmp_path / "cache")
    entries = sorted(cache.root.rglob("*.json"))
    assert len(entries) == 2 and first.measured["cached"] == []
    # The agent knows where the cache is on the host and tries every way there it can think of.
    attack = "; ".join(
        [
            f"ls -la {cache.root} > tried.txt 2>&1",
            f"for f in {' '.join(str(p) for p in entries)}; do echo '{{\"key\": 0}}' > $f; done",
            f"mkdir -p {cache.root}/toy-sleep && echo evil > {cache.root}/toy-sleep/evil.json",
            'mkdir -p "$ISOBENCH_WORKDIR/../../../../../cache/measurements" && echo evil >'
            ' "$ISOBENCH_WORKDIR/../../../../../cache/measurements/evil.json"',
            "sed -i s/0.06/0.02/ work.py; true",
        ]
    )
    job = docker_job(tmp_path, toy, f"command:{attack}")
    outcome = run_job(job)
    assert outcome.agent_run["returncode"] == 0
    assert sorted(cache.root.rglob("*.json")) == entries  # nothing added
    # Nothing the agent wrote reached an entry: the harness found both intact (no entry discarded).
    # The human is measured fresh every run and stored again by the harness itself.
    assert not [w for w in outcome.measured["warnings"] if "discarded the cached" in w]
    assert outcome.measured["sources"]["human"]["source"] == "fresh"
    assert outcome.measured["sources"]["baseline"]["drift_check"]["fresh_rounds"] == 1
    for path in entries:
        data = json.loads(path.read_text())
        assert data["checksum"] == checksum(data["content"])
    assert not list(tmp_path.rglob("evil.json"))


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ('command:rm -rf "$ISOBENCH_WORKDIR"; true', "workdir_destroyed"),
        ("command:mkdir sub && git init -q sub && echo x > sub/x", "workdir_destroyed"),
    ],
)
def test_destroying_the_working_copy_is_the_agents_failure(tmp_path: Path, agent: str, reason: str) -> None:
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=20)
    job = docker_job(tmp_path, toy, agent)
    outcome = run_job(job)
    assert outcome.status == "ok" and outcome.hard == "failed" and outcome.hard_reason == reason
    assert engine.count_containers(job.run_id) == 0


def test_a_task_image_variant_is_built_without_the_agents_benchmark_edit(
    tmp_path: Path,
    repo_name: str,  # noqa: F811
) -> None:
    task_file = write_git_task(tmp_path / "tasks", repo_name, tmp_path / "upstream")
    job = image_job(tmp_path, task_file, f"command:sed -i s/60/20/ csrc/kernel.c && {FAKE_BENCH}")
    outcome = run_job(job)
    assert outcome.status == "ok", outcome.error
    assert sorted(outcome.patch["files"]) == ["bench.py", "csrc/kernel.c"]
    assert outcome.touches_benchmark == ["bench.py"]
    metrics = outcome.measured["metrics"]
    # the kernel change was built and measured; the rewritten report was not
    assert 1e-3 < metrics["agent"]["avg_latency"] < 0.6 * metrics["baseline"]["avg_latency"], metrics
