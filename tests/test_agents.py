"""Built-in agents and the prompt, against a real task repository and the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_isobench.agents.base import SolveContext
from pytest_isobench.agents.builtin import ReplayAgent, load_predictions
from pytest_isobench.agents.prompt import render_prompt
from pytest_isobench.agents.registry import agent_registry, build_agent
from pytest_isobench.pipeline import oracle_patch
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.sandbox.repos import materialise
from support import load, write_source_task
from test_local_sandbox import settings


@pytest.fixture
def ctx(tmp_path: Path) -> SolveContext:
    task_file = write_source_task(tmp_path / "tasks", "toy-agent")
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    box = LocalSandbox(SandboxSpec(task, task_file, repo, tmp_path / "ws", settings(tmp_path)))
    workdir = box.agent_workdir()
    prompt = render_prompt(task, workdir)
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt)
    logs = tmp_path / "logs"
    logs.mkdir()
    return SolveContext(
        task=task,
        workdir=workdir,
        prompt=prompt,
        prompt_file=prompt_file,
        time_budget_s=60,
        log_dir=logs,
        sandbox=box,
        oracle_patch=lambda: oracle_patch(repo, task),
    )


def agent(spec: str):  # type: ignore[no-untyped-def]
    return build_agent(spec, agent_registry([]))


def test_human_agent_reproduces_the_human_change(ctx: SolveContext) -> None:
    agent("human").solve(ctx)
    patch = ctx.sandbox.extract_patch()
    assert "-DELAY = 0.06" in patch and "+DELAY = 0.02" in patch


def test_noop_agent_leaves_an_empty_patch(ctx: SolveContext) -> None:
    agent("noop").solve(ctx)
    assert ctx.sandbox.extract_patch() == ""


def test_command_agent_gets_prompt_task_and_workdir(ctx: SolveContext) -> None:
    script = (
        'printf "%s\\n%s\\n" "$ISOBENCH_TASK_ID" "$ISOBENCH_WORKDIR" > seen.txt;'
        ' cp "$ISOBENCH_PROMPT_FILE" prompt_copy.txt'
    )
    run = agent(f"command:{script}").solve(ctx)
    assert run.returncode == 0 and not run.timed_out
    assert (ctx.workdir / "seen.txt").read_text() == f"toy-agent\n{ctx.workdir}\n"
    assert (ctx.workdir / "prompt_copy.txt").read_text() == ctx.prompt
    assert "+toy-agent" in ctx.sandbox.extract_patch()


def test_command_agent_is_stopped_at_its_time_budget(ctx: SolveContext) -> None:
    short = SolveContext(**{**ctx.__dict__, "time_budget_s": 1.0})
    run = agent("command:echo started > started.txt; sleep 120 & sleep 120").solve(short)
    assert run.timed_out and run.returncode is None and run.duration_s < 20
    assert (ctx.workdir / "started.txt").exists()  # what it changed before the budget still counts


def test_replay_from_jsonl_and_missing_prediction(ctx: SolveContext, tmp_path: Path) -> None:
    preds = tmp_path / "preds.jsonl"
    lines = [
        {"instance_id": "toy-agent", "model_patch": "diff --git a/x b/x\n", "model_name_or_path": "m1"},
        {"instance_id": "other", "model_patch": None, "model_name_or_path": "m1"},
    ]
    preds.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    run = agent(f"replay:{preds}").solve(ctx)
    assert run.patch == "diff --git a/x b/x\n" and run.info["model_name_or_path"] == "m1"
    missing = ReplayAgent(preds, {}).solve(ctx)
    assert missing.patch == "" and missing.info["prediction"] == "missing"


def test_replay_from_a_folder_of_diffs(ctx: SolveContext, tmp_path: Path) -> None:
    folder = tmp_path / "diffs"
    folder.mkdir()
    (folder / "toy-agent.diff").write_text("diff --git a/y b/y\n")
    assert agent(f"replay:{folder}").solve(ctx).patch == "diff --git a/y b/y\n"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json\n", "preds.jsonl:1: not JSON"),
        ('{"model_patch": "x"}\n', "needs a string 'instance_id'"),
        ('{"instance_id": "a", "model_patch": 3}\n', "'model_patch' must be a string"),
    ],
)
def test_bad_predictions_file_names_file_and_line(tmp_path: Path, content: str, words: str) -> None:
    preds = tmp_path / "preds.jsonl"
    preds.write_text(content)
    with pytest.raises(ValueError, match=words):
        load_predictions(preds)
    with pytest.raises(pytest.UsageError, match=words):
        agent(f"replay:{preds}")


def test_agent_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(pytest.UsageError, match="replay needs a path"):
        agent("replay")
    with pytest.raises(pytest.UsageError, match="does not exist"):
        agent(f"replay:{tmp_path / 'nope.jsonl'}")
    with pytest.raises(pytest.UsageError, match="command needs a shell command"):
        agent("command:")


def test_prompt_follows_the_template_and_leaks_nothing(ctx: SolveContext) -> None:
    prompt = ctx.prompt
    for part in (
        str(ctx.workdir),
        "Goal:",
        "Guidelines:",
        "Workflow:",
        "Bottleneck description:",
        ctx.task.description,
        "avg_latency",
        "lower is better",
    ):
        assert part in prompt
    human = ctx.oracle_patch()
    changed = [line[1:] for line in human.splitlines() if line[:1] in "+-" and line[1:2] not in "+-"]
    assert changed and not any(line.strip() and line in prompt for line in changed)
    assert ctx.task.title not in prompt  # the PR title is the commit message's subject
    assert "work.py" not in prompt  # no file hints at the default hint level


def test_files_hint_adds_the_target_files_only_when_asked(ctx: SolveContext) -> None:
    plain = render_prompt(ctx.task, ctx.workdir)
    hinted = render_prompt(ctx.task, ctx.workdir, "files")
    assert "work.py" not in plain
    assert "Files to look at first" in hinted and "- work.py" in hinted
    assert hinted.startswith(plain.rstrip("\n"))
    with pytest.raises(ValueError, match="unknown hint level 'all'"):
        render_prompt(ctx.task, ctx.workdir, "all")
