"""The executor registry: the built-in executors, those a conftest.py adds, and option parsing."""

from __future__ import annotations

from collections.abc import Mapping

from ..options import Settings
from .base import Executor, ExecutorFactory


def _ray(arg: str | None, settings: Settings) -> Executor:
    from .ray import RayExecutor  # imported only when chosen: ray is an optional extra

    return RayExecutor.create(arg, settings)


def builtin_executors() -> dict[str, ExecutorFactory]:
    """The executors that ship with the plugin."""
    from .local import LocalExecutor

    return {"local": LocalExecutor.create, "ray": _ray}


def executor_registry(extra: list[Mapping[str, ExecutorFactory]]) -> dict[str, ExecutorFactory]:
    """Built-ins plus those ``pytest_isobench_executors`` hook implementations return."""
    registry = builtin_executors()
    for mapping in extra:
        registry.update(mapping)
    return registry


def split_spec(spec: str) -> tuple[str, str | None]:
    """``ray:127.0.0.1:6379`` → ("ray", "127.0.0.1:6379"); ``local`` → ("local", None)."""
    name, sep, arg = spec.strip().partition(":")
    return name, (arg if sep else None)


def build_executor(spec: str, registry: Mapping[str, ExecutorFactory], settings: Settings) -> Executor:
    """The executor ``--isobench-executor`` names; ValueError naming the known ones otherwise."""
    name, arg = split_spec(spec)
    factory = registry.get(name)
    if factory is None:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown executor {spec!r}; known: {known} (e.g. local, ray, ray:HOST:PORT)")
    return factory(arg, settings)
