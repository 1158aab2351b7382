"""Reports of a run: the controller's terminal summary and JSON section (``terminal``), the HTML page."""

from __future__ import annotations

from .terminal import (
    EXITED,
    SPEND_FIELDS,
    JsonDict,
    RunCollector,
    _judge_line,
    _task_line,
    _task_row,
    agent_costs,
    crashed_task,
    judge_summary,
    render_agent_costs,
)

__all__ = [
    "EXITED",
    "SPEND_FIELDS",
    "JsonDict",
    "RunCollector",
    "_judge_line",
    "_task_line",
    "_task_row",
    "agent_costs",
    "crashed_task",
    "judge_summary",
    "render_agent_costs",
]
