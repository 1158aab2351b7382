"""Hooks a conftest.py implements to add agents and sandboxes without touching the package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agents.base import AgentFactory
    from .correctness.base import CorrectnessCheck
    from .executors.base import ExecutorFactory
    from .judge import JudgeFactory
    from .sandbox.base import SandboxFactory


def pytest_isobench_agents() -> Mapping[str, AgentFactory]:  # type: ignore[empty-body]
    """Return extra agents by name; ``--isobench-agent=NAME[:ARG]`` then finds them.

    A factory gets the text after ``NAME:`` (or None) and returns an object with a ``name`` and a
    ``solve(ctx) -> AgentRun`` method (see ``pytest_isobench.agents.base``). Example (conftest.py)::

        from pytest_isobench.agents.base import AgentRun

        class Sleepy:
            name = "sleepy"
            def solve(self, ctx):
                return AgentRun()

        def pytest_isobench_agents():
            return {"sleepy": lambda arg: Sleepy()}
    """


def pytest_isobench_sandboxes() -> Mapping[str, SandboxFactory]:  # type: ignore[empty-body]
    """Return extra sandbox backends by name; ``--isobench-backend=NAME`` then finds them.

    A factory is called with a ``SandboxSpec`` and returns a ``Sandbox`` (see
    ``pytest_isobench.sandbox.base``); it also answers ``gpus_available()`` before any sandbox exists.
    """


def pytest_isobench_judges() -> Mapping[str, JudgeFactory]:  # type: ignore[empty-body]
    """Return extra soft-metric judges by spec prefix; ``--isobench-judge=NAME[:ARG]`` then finds them.

    A factory gets the text after ``NAME:`` (or None) and returns a judge (see
    ``pytest_isobench.judge.base.Judge``). Example (conftest.py)::

        def pytest_isobench_judges():
            return {"always-same": lambda arg: AlwaysSame()}
    """


def pytest_isobench_executors() -> Mapping[str, ExecutorFactory]:  # type: ignore[empty-body]
    """Return extra executors by name; ``--isobench-executor=NAME[:ARG]`` then finds them.

    A factory gets the text after ``NAME:`` (or None) and the settings, and returns an object with
    ``submit(job)``, ``run(job, progress) -> Outcome`` and ``close()`` (see
    ``pytest_isobench.executors.base.Executor``). Example (conftest.py)::

        from pytest_isobench.executors.local import LocalExecutor

        def pytest_isobench_executors():
            return {"inline": LocalExecutor.create}
    """


def pytest_isobench_correctness_checks() -> Mapping[str, CorrectnessCheck]:  # type: ignore[empty-body]
    """Return extra correctness check kinds; a task's ``[correctness]`` with ``kind = NAME`` then runs them.

    A check has a ``kind`` and a ``run(config, ctx) -> dict`` method (see
    ``pytest_isobench.correctness.base``): ``config`` holds the task file's fields for it (``config.kind``
    and the rest as extras), ``ctx`` the sandbox, the human and agent trees and an artifacts folder; the
    dict has ``status`` (pass, fail, error) and ``kind``. Example (conftest.py)::

        class SameFiles:
            kind = "same_files"
            def run(self, config, ctx):
                human, agent = (ctx.tree(v) / config.path for v in ("human", "agent"))
                same = human.read_bytes() == agent.read_bytes()
                return {"status": "pass" if same else "fail", "kind": self.kind}

        def pytest_isobench_correctness_checks():
            return {"same_files": SameFiles()}
    """
