"""What a scripted fake model needs to fix a smoke task through an agent CLI's own edit tools.

The fake model servers of the agent tests (one per wire API) read the request, find which smoke task
the prompt is about (:func:`fix_for`) and where the working copy is (:func:`workdir_in`), and then
script the CLI's tool calls: read each file of the fix, then replace its content (:class:`FileFix`
holds the file's text before and after the task's own change, computed with ``git apply``).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SMOKE_ROOT = Path(__file__).resolve().parents[1] / "tasks" / "smoke"
_WORKDIR = re.compile(r"checked out for you at (/\S+?)\.? It is ")


@dataclass(frozen=True)
class FileFix:
    path: str  # relative to the working copy
    old: str
    new: str


@dataclass(frozen=True)
class SmokeFix:
    task_id: str
    marker: str  # a phrase of the task's description: found in a request, it names the task
    files: tuple[FileFix, ...]


@cache
def smoke_fixes(root: Path = SMOKE_ROOT) -> tuple[SmokeFix, ...]:
    """Every smoke task's fix, from its base tree and ``fix.diff``."""
    fixes = []
    for task_file in sorted(root.glob("*.toml")):
        data = tomllib.loads(task_file.read_text(encoding="utf-8"))
        tree = task_file.parent / data["source"]["tree"]
        diff = task_file.parent / data["source"]["patch"]
        fixes.append(
            SmokeFix(data["id"], " ".join(data["description"].split())[:60], _file_fixes(tree, diff))
        )
    return tuple(fixes)


def _file_fixes(tree: Path, diff: Path) -> tuple[FileFix, ...]:
    with tempfile.TemporaryDirectory() as scratch:  # outside any repository: git apply as plain patch
        changed = subprocess.run(
            ["git", "apply", "--numstat", str(diff)], cwd=scratch, capture_output=True, text=True, check=True
        ).stdout
        paths = [line.split("\t", 2)[2] for line in changed.splitlines() if line.strip()]
        for path in paths:
            dest = Path(scratch, path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes((tree / path).read_bytes())
        subprocess.run(["git", "apply", str(diff)], cwd=scratch, check=True, capture_output=True)
        return tuple(
            FileFix(path, (tree / path).read_text(encoding="utf-8"), Path(scratch, path).read_text("utf-8"))
            for path in paths
        )


def fix_for(text: str) -> SmokeFix | None:
    """The smoke task a request (its prompt, in any JSON encoding) is about; None for another one."""
    flat = " ".join(text.replace("\\n", " ").split())
    for fix in smoke_fixes():
        if fix.marker in flat:
            return fix
    return None


def workdir_in(text: str) -> str | None:
    """The agent's working copy, as the harness's prompt names it."""
    match = _WORKDIR.search(text.replace("\\n", " "))
    return match.group(1) if match else None
