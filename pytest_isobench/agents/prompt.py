"""The agent-facing prompt, after the paper's template: where, goal, guidelines, workflow, description.

It never carries the human diff, the commit message or a diffstat: only the task's own description.
"""

from __future__ import annotations

from pathlib import Path

from ..tasks import Task

PROMPT_VERSION = 1

TEMPLATE = """\
A code repository is checked out for you at {workdir}. It is {repo_name} at a commit from its own history.

Goal: make this code base faster on the workload described below, measured by its {mode} benchmark
({metric}, where {better} is better). Your changes are measured against the same benchmark afterwards.

Guidelines:
- Change non-test source files only; do not edit benchmarks or tests to make numbers look better.
- Keep behaviour the same: outputs must stay functionally identical for every input.
- Improve the general case; do not special-case the benchmark's particular inputs or sizes.
- If you change compiled sources (C++, CUDA, Triton build files), rebuild them so the change takes effect.
- Put scratch scripts (timing, profiling) under .bench_scratch/ in the repository; they are not part of
  your change.

Workflow:
1. Explore the repository and find the code on the path the workload exercises.
2. Reproduce the slowness with a small timing script under .bench_scratch/.
3. Profile to find where the time goes.
4. Edit the source to remove the bottleneck.
5. Rebuild if needed, re-run your timing script, and check that behaviour is unchanged.

When you stop, your change is taken from the working copy as it is (added, changed and deleted
files); you do not need to commit or write a patch file.

Bottleneck description:
{description}
{hints}"""
FILES_HINT = """
Files to look at first (the ones the reference change touched):
{files}
"""
HINT_LEVELS = ("none", "files")


def render_prompt(task: Task, workdir: Path, hints: str = "none") -> str:
    """The prompt for one task; the working copy's path is where the agent sees it.

    ``hints="files"`` adds the task's target files, as the original ISO-Bench runs did, so results can
    be compared with theirs; the default reveals nothing beyond the description.
    """
    if hints not in HINT_LEVELS:
        raise ValueError(f"unknown hint level {hints!r}; known: {', '.join(HINT_LEVELS)}")
    bench = task.benchmark
    files = "\n".join(f"- {name}" for name in task.target_files)
    hint_text = FILES_HINT.format(files=files) if hints == "files" and files else ""
    return TEMPLATE.format(
        workdir=workdir,
        repo_name=task.repo,
        mode=bench.mode,
        metric=bench.metric or "its primary metric",
        better="lower" if bench.lower_is_better else "higher",
        description=task.description.strip() or "(no description has been written for this task yet)",
        hints=hint_text,
    )
