"""Fixtures shared by the project's own test modules (a module's own fixture of the same name wins)."""

from __future__ import annotations

import pytest

from support import ANCHOR, write_source_task


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two toy tasks whose human change cuts a sleep from 60 ms to 20 ms."""
    for task_id in ("toy-one", "toy-two"):
        write_source_task(pytester.path / "tasks", task_id)
    (pytester.path / "tasks" / "test_isobench.py").write_text(ANCHOR)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    return pytester
