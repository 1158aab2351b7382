"""The Ray executor on a local three-node cluster with 0, 2 and 4 fake GPUs (slow: the cluster takes ~30 s).

The smoke tasks run as two cluster tasks each; the tests read where and when each stage ran from the
``executor.json`` the executor leaves in every task's artifacts folder.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the ray extra: pip install 'pytest-isobench[ray]'")

from ray_cluster import outcome_of, ray_cluster, run_suite, smoke_project

pytestmark = pytest.mark.slow

NODES = [
    {"num_cpus": 2, "num_gpus": 0, "resources": {"measure": 1}},
    {"num_cpus": 2, "num_gpus": 2, "resources": {"measure": 1}},
    {"num_cpus": 2, "num_gpus": 4, "resources": {"measure": 1}},
]
NEEDS = {"smoke-latency": 1, "smoke-serving": 2, "smoke-throughput": 4}
EXTRA = {"smoke-latency-4gpu": 4, "smoke-latency-8gpu": 8}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with ray_cluster(tmp_path_factory.mktemp("nodes"), NODES) as running:
        yield running


@pytest.fixture(scope="module")
def gpu_nodes(cluster: Any) -> dict[str, int]:
    """Node id → its fake GPU count."""
    import ray

    ray.init(address=cluster.address)
    try:
        return {n["NodeID"]: int(n["Resources"].get("GPU", 0)) for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def placed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    """One run of the smoke tasks with fake GPU needs of 1, 2 and 4 (two of 4) and one of 8."""
    project = smoke_project(tmp_path_factory.mktemp("placed"), NEEDS, EXTRA)
    result, tests = run_suite(
        project, "--isobench-agent=noop", f"--isobench-executor=ray:{cluster.address}", "--isobench-run-id=r1"
    )
    return project / "runs" / "r1", result, tests


def placement(run: Path, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / task_id / "noop" / "executor.json").read_text())
    return data


def test_each_task_is_measured_on_a_node_with_enough_gpus_and_gets_that_many(
    placed: tuple[Path, Any, dict[str, Any]], gpu_nodes: dict[str, int]
) -> None:
    run, result, tests = placed
    needs = {**NEEDS, "smoke-latency-4gpu": 4}
    for task_id, needed in needs.items():
        assert outcome_of(tests[task_id])["hard"] == "worse", result.stdout[-3000:]
        where = placement(run, task_id)
        measure = where["measure"]
        assert gpu_nodes[measure["node_id"]] >= needed
        assert len(measure["gpus"]) == needed == len(set(measure["gpus"]))
        assert set(measure["gpus"]) <= {str(i) for i in range(gpu_nodes[measure["node_id"]])}
        assert where["solve"]["gpus"] is None  # the agent stage holds no GPU
    four = [placement(run, t)["measure"]["node_id"] for t in ("smoke-throughput", "smoke-latency-4gpu")]
    assert four[0] == four[1] and gpu_nodes[four[0]] == 4


def test_two_measurements_never_overlap_on_one_node(placed: tuple[Path, Any, dict[str, Any]]) -> None:
    run, _, _ = placed
    spans: dict[str, list[tuple[float, float]]] = {}
    for task_id in [*NEEDS, "smoke-latency-4gpu"]:
        measure = placement(run, task_id)["measure"]
        spans.setdefault(measure["node_id"], []).append((measure["started"], measure["ended"]))
    assert max(len(s) for s in spans.values()) >= 2  # the two 4-GPU tasks share the 4-GPU node
    for node_spans in spans.values():
        ordered = sorted(node_spans)
        for (_, end), (start, _) in itertools.pairwise(ordered):
            assert end <= start


def test_a_task_needing_more_gpus_than_any_node_is_skipped_with_the_reason(
    placed: tuple[Path, Any, dict[str, Any]],
) -> None:
    run, _, tests = placed
    skipped = tests["smoke-latency-8gpu"]
    assert skipped["outcome"] == "skipped"
    assert "needs 8 GPU(s); the largest node of the Ray cluster with a measurement slot has 4" in json.dumps(
        skipped
    )
    assert not (run / "smoke-latency-8gpu").exists()  # never submitted


def test_artifacts_come_back_to_the_controllers_run_folder(placed: tuple[Path, Any, dict[str, Any]]) -> None:
    run, _, tests = placed
    outcome = outcome_of(tests["smoke-serving"])
    folder = run / "smoke-serving" / "noop"
    assert outcome["artifacts"] == str(folder)
    for name in ("patch.diff", "agent.json", "prompt.txt", "outcome.json"):
        assert (folder / name).is_file(), name
    assert any((folder / "bench").rglob("*")), "benchmark output"
    lines = [json.loads(line) for line in (run / "outcomes.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in lines) == sorted([*NEEDS, "smoke-latency-4gpu"])


def verdicts(tests: dict[str, Any]) -> dict[str, tuple[str, Any, Any, Any]]:
    found = {}
    for task_id, test in tests.items():
        outcome = outcome_of(test)
        found[task_id] = (test["outcome"], outcome["status"], outcome["hard"], outcome["quadrant"])
    return found


def summary_rows(stdout: str) -> list[str]:
    """The summary table's per-repo rows (task lines carry measured percentages, which vary)."""
    return [line for line in stdout.splitlines() if line.startswith("smoke  ")]


def test_the_smoke_suite_gives_the_local_executors_verdicts_and_summary(
    cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local_project = smoke_project(tmp_path_factory.mktemp("local"))
    ray_project = smoke_project(tmp_path_factory.mktemp("ray"))
    args = ("--isobench-agent=noop", "-m", "smoke", "--isobench-run-id=same")
    local, local_tests = run_suite(local_project, *args)
    remote, ray_tests = run_suite(ray_project, *args, f"--isobench-executor=ray:{cluster.address}")
    assert verdicts(ray_tests) == verdicts(local_tests)
    assert summary_rows(remote.stdout) == summary_rows(local.stdout) != []

    def records(project: Path) -> list[tuple[str, str, Any, str]]:
        lines = (project / "runs" / "same" / "outcomes.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        return sorted((r["task_id"], r["status"], r["hard"], r["quadrant"]) for r in rows)

    assert records(ray_project) == records(local_project)
