"""The Ray executor with the docker backend prefers the nodes whose Docker engine holds the task image
(slow: a two-node cluster and the smoke task in containers).

The head node's processes see no engine (``DOCKER_HOST`` names a socket that does not exist), so only
the second node holds the image. Left to itself Ray would start both stages on the head, next to the
controller, where the docker backend cannot run them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra: pip install 'pytest-isobench[ray]'")

from ray_cluster import outcome_of, ray_cluster, run_suite, smoke_project
from test_docker_sandbox import need_docker

pytestmark = pytest.mark.slow

NODE = {"num_cpus": 2, "num_gpus": 0, "resources": {"measure": 1}}


def test_both_stages_run_on_the_node_that_holds_the_task_image(tmp_path: Path) -> None:
    need_docker()
    import ray

    no_engine = {"DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}"}
    with ray_cluster(tmp_path / "nodes", [NODE, NODE], envs=[no_engine, {}]) as cluster:
        project = smoke_project(tmp_path / "project")
        args = ("--isobench-agent=noop", "--isobench-backend=docker", "-k", "smoke-latency")
        result, tests = run_suite(
            project, *args, "--isobench-run-id=r", f"--isobench-executor=ray:{cluster.address}"
        )
        ray.init(address=cluster.address)
        try:
            head = ray.get_runtime_context().get_node_id()  # this driver joins the head's node
            nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        finally:
            ray.shutdown()
    (holder,) = set(nodes) - {head}
    outcome = outcome_of(tests["smoke-latency"])
    assert outcome["status"] == "ok" and outcome["hard"] == "worse", result.stdout[-3000:]
    where = json.loads((project / "runs" / "r" / "smoke-latency" / "noop" / "executor.json").read_text())
    assert where["solve"]["node_id"] == holder
    assert where["measure"]["node_id"] == holder
