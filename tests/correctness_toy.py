"""The toy task the correctness tests share: the step's sleep to cut, and a model server (the fake
completions server on 127.0.0.1) that the task starts and an agent patch may change."""

from __future__ import annotations

import json
from pathlib import Path

from support import BENCH_PY, WORK_PY, diff_trees, write_source_task

HELPER = Path(__file__).resolve().parent / "fake_completions_server.py"


def serve_py(**flags: object) -> str:
    """The task's ``serve.py``: the fake completions server on the port it is given, with ``flags``."""
    args = "".join(f", '--{name.replace('_', '-')}', {str(value)!r}" for name, value in flags.items())
    return (
        "import runpy, sys\n"
        f"sys.argv = [{str(HELPER)!r}, '--port', sys.argv[1]{args}]\n"
        f"runpy.run_path({str(HELPER)!r}, run_name='__main__')\n"
    )


def served_task(tmp_path: Path, correctness: str, **flags: object) -> Path:
    """Task ``toy-sleep`` under ``tmp_path/tasks`` with its server, and ``correctness`` as the body of its
    ``[correctness]`` table."""
    base = {"bench.py": BENCH_PY, "work.py": WORK_PY, "serve.py": serve_py(**flags)}
    task_file = write_source_task(
        tmp_path / "tasks",
        "toy-sleep",
        base=base,
        server="python serve.py {port}",
        extra="server_timeout_s = 30",
    )
    task_file.write_text(task_file.read_text() + f"\n[correctness]\n{correctness}")
    return task_file


def replay(
    tmp_path: Path, name: str, delay: str, served: dict[str, object] | None = None, **changed: object
) -> str:
    """A replay agent whose patch sets the step's sleep to ``delay`` seconds and starts the server of a
    task made with ``served`` flags with ``changed`` flags added."""
    flags = dict(served or {})
    before = {"work.py": WORK_PY, "serve.py": serve_py(**flags)}
    after = {"work.py": WORK_PY.replace("0.06", delay), "serve.py": serve_py(**{**flags, **changed})}
    scratch = tmp_path / f"diff-{name}"
    scratch.mkdir()
    preds = tmp_path / f"{name}.jsonl"
    preds.write_text(
        json.dumps({"instance_id": "toy-sleep", "model_patch": diff_trees(before, after, scratch)}) + "\n"
    )
    return f"replay:{preds}"
