"""The bundled ISO-Bench catalog (tasks/vllm, tasks/sglang): loads cleanly and matches the record."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.measure.benchfiles import benchmark_patterns, command_files, glob_regex
from pytest_isobench.tasks import (
    BENCHMARK_FIELDS_WITH_ORIGIN,
    BrokenTaskFile,
    LoadedTask,
    load_catalog,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS_ROOT = REPO_ROOT / "tasks"
# The CI machine puts `shared/` beside the repository clone.
RECORDS_FILE = Path(__file__).resolve().parents[2] / "shared" / "isobench" / "tasks.json"

EXPECTED_COUNTS = {"vllm": 39, "sglang": 15}
PLACEHOLDERS = {"port", "result_dir", "dataset_dir"}
KNOWN_METRICS = {
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "mean_itl_ms",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "requests_per_second",
    "tokens_per_second",
    "output_tokens_per_second",
    "avg_latency",
    "cost_time",
}


def _load(root: Path) -> list[LoadedTask]:
    entries = load_catalog([root])
    broken = [e.message for e in entries if isinstance(e, BrokenTaskFile)]
    assert not broken, "\n".join(broken)
    return [e for e in entries if isinstance(e, LoadedTask)]


@pytest.fixture(scope="module")
def catalog() -> list[LoadedTask]:
    """The ISO-Bench tasks: every file under tasks/vllm and tasks/sglang."""
    loaded: list[LoadedTask] = []
    for repo in EXPECTED_COUNTS:
        loaded.extend(_load(TASKS_ROOT / repo))
    return loaded


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, Any]]:
    if not RECORDS_FILE.is_file():
        pytest.skip(f"ISO-Bench record not available: {RECORDS_FILE} is absent")
    return {r["id"]: r for r in json.loads(RECORDS_FILE.read_text(encoding="utf-8"))}


def _ids(tasks: list[LoadedTask], **where: str) -> list[str]:
    return [e.id for e in tasks if all(getattr(e.task, k) == v for k, v in where.items())]


def test_whole_tasks_root_has_no_broken_file() -> None:
    entries = load_catalog([TASKS_ROOT])
    broken = [e.message for e in entries if isinstance(e, BrokenTaskFile)]
    assert not broken, "\n".join(broken)


def test_task_counts(catalog: list[LoadedTask]) -> None:
    counts = {repo: len(_ids(catalog, repo=repo)) for repo in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    assert len({e.id for e in catalog}) == sum(EXPECTED_COUNTS.values())


def test_ids_follow_layout(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        task = entry.task
        assert task.id == f"{task.repo}-{task.human_commit[:8]}", entry.path
        assert entry.path.stem == task.id, entry.path
        assert entry.path.parent == TASKS_ROOT / task.repo, f"{entry.path} belongs in tasks/{task.repo}/"


def test_every_task_is_ready_and_described(catalog: list[LoadedTask]) -> None:
    # What a description may not reveal is checked by tests/test_leakage.py.
    assert [e.id for e in catalog if e.task.status != "ready" or len(e.task.description.split()) < 20] == []


def test_ready_tasks_have_what_a_run_needs(catalog: list[LoadedTask]) -> None:
    problems = []
    for entry in catalog:
        bench = entry.task.benchmark
        if entry.task.status != "ready":
            continue
        for name in ("command", "metric", "gpus", "model"):
            if getattr(bench, name) is None:
                problems.append(f"{entry.id}: ready but benchmark.{name} is missing")
        if bench.metric is not None and bench.metric not in KNOWN_METRICS:
            problems.append(f"{entry.id}: metric {bench.metric!r} is not a normalised name")
        if bench.gpus is not None and bench.gpus < 1:
            problems.append(f"{entry.id}: gpus must be at least 1")
    assert not problems, "\n".join(problems)


def test_incomplete_tasks_say_why(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        if entry.task.status == "incomplete":
            assert entry.task.status_reason.strip(), entry.id


def test_every_origin_is_complete(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        bench = entry.task.benchmark
        for name in BENCHMARK_FIELDS_WITH_ORIGIN:
            if getattr(bench, name) is None:
                continue
            origin = bench.origin.get(name)
            assert origin is not None, f"{entry.id}: no origin for {name}"
            if origin.source == "curated":
                assert origin.reason.strip(), f"{entry.id}: curated {name} without a reason"
        # `server` and `metric` never come from the archive: it records neither.
        for name in ("server", "metric"):
            if getattr(bench, name) is not None:
                assert bench.origin[name].source == "curated", f"{entry.id}: {name} cannot be archive"


def test_every_bundled_task_records_the_origin_of_each_benchmark_value() -> None:
    """The schema lets a user's own task leave out ``origin``; the bundled catalog (all of tasks/)
    must say for every value whether it came from the ISO-Bench record or was curated, and why."""
    for entry in _load(TASKS_ROOT):
        missing = entry.task.benchmark.missing_origins
        assert not missing, f"{entry.path}: no origin recorded for {missing}"


def test_placeholders_are_known(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        bench = entry.task.benchmark
        for text in (bench.command, bench.server, bench.ready_url):
            names = set(re.findall(r"\{([^{}]*)\}", text or ""))
            assert names <= PLACEHOLDERS, f"{entry.id}: unknown placeholder(s) {names - PLACEHOLDERS}"


def test_ready_serving_tasks_share_a_port(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        bench = entry.task.benchmark
        if entry.task.status != "ready" or bench.mode != "serving":
            continue
        assert bench.server is not None, f"{entry.id}: serving task without a server"
        assert "{port}" in bench.server, f"{entry.id}: server does not listen on {{port}}"
        assert bench.command is not None and "{port}" in bench.command, f"{entry.id}: client ignores {{port}}"
        assert "{port}" in bench.ready_url, entry.id


def test_ready_tasks_write_results_where_the_harness_looks(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        bench = entry.task.benchmark
        if entry.task.status != "ready" or bench.mode == "custom":
            continue
        assert bench.command is not None
        if bench.mode == "serving" and entry.task.repo == "vllm":
            assert "--save-result --result-dir {result_dir}" in bench.command, entry.id
        elif bench.mode == "serving":
            assert "--output-file {result_dir}/" in bench.command, entry.id
        else:
            assert "--output-json {result_dir}/" in bench.command, entry.id


def test_sglang_clients_read_a_cached_dataset(catalog: list[LoadedTask]) -> None:
    """Without --dataset-path, SGLang's clients download ShareGPT from the hub: no run offline."""
    clients = 0
    for entry in catalog:
        task, bench = entry.task, entry.task.benchmark
        command = bench.command or ""
        if not re.search(r"sglang\.bench_(serving|offline_throughput)", command):
            continue
        clients += 1
        path = re.search(r"--dataset-path \{dataset_dir\}/(\S+)", command)
        assert path is not None, f"{entry.id}: the client reads no dataset from {{dataset_dir}}"
        assert path[1] in {d.name for d in task.inputs.datasets}, (
            f"{entry.id}: {path[1]} is not under [inputs]"
        )
        assert bench.model in task.inputs.models, f"{entry.id}: [inputs] models lacks {bench.model}"
        assert "--dataset-path" in bench.origin["command"].reason, f"{entry.id}: the curated reason omits it"
    assert clients == 14


def test_env_is_not_prefixed_on_commands(catalog: list[LoadedTask]) -> None:
    for entry in catalog:
        for text in (entry.task.benchmark.command, entry.task.benchmark.server):
            assert not re.match(r"^\s*[A-Z_][A-Z0-9_]*=", text or ""), f"{entry.id}: use [benchmark.env]"


def test_catalog_matches_the_record(catalog: list[LoadedTask], records: dict[str, dict[str, Any]]) -> None:
    assert {e.id for e in catalog} == set(records)
    problems = []
    for entry in catalog:
        task, record = entry.task, records[entry.id]
        facts = {
            "repo": (task.repo, record["repo"]),
            "repo_url": (task.repo_url, record["repo_url"]),
            "pr_url": (task.pr_url, record["pr_url"]),
            "title": (task.title, record["title"]),
            "base_commit": (task.base_commit, record["base_commit"]),
            "human_commit": (task.human_commit, record["human_commit"]),
            "target_files": (task.target_files, record["files_changed"]),
        }
        bench = task.benchmark
        archived = {
            "command": record["perf_command"],
            "model": record["model"],
            "gpus": int(record["gpu_config"].split(":")[1]) if record["gpu_config"] else None,
        }
        for name, expected in archived.items():
            origin = bench.origin.get(name)
            if origin is not None and origin.source == "archive":
                facts[f"benchmark.{name}"] = (getattr(bench, name), expected)
        for name, (ours, theirs) in facts.items():
            if ours != theirs:
                problems.append(f"{entry.id}: {name} is {ours!r}, the record says {theirs!r}")
    assert not problems, "\n".join(problems)


def test_no_human_change_edits_the_benchmark_its_task_runs(
    catalog: list[LoadedTask], records: dict[str, dict[str, Any]]
) -> None:
    """Benchmark files come from the base tree for every variant (tasks/README.md, "Benchmark files"):
    sound as long as no human change edits a benchmark file its own task runs."""
    touched = {}
    for entry in catalog:
        regexes = [glob_regex(p) for p in benchmark_patterns(entry.task)]
        paths = [p for p in records[entry.id]["files_changed"] if any(r.match(p) for r in regexes)]
        if paths:
            touched[entry.id] = paths
            assert not set(paths) & set(command_files(entry.task)), (entry.id, paths)
    assert touched == {
        "vllm-3476ed08": ["benchmarks/benchmark_latency.py"],
        "vllm-e7b20426": ["benchmarks/kernels/benchmark_grouped_gemm_cutlass.py"],
        "sglang-c087ddd6": ["benchmark/kernels/fused_moe_triton/benchmark_ep_pre_reorder_triton.py"],
    }
