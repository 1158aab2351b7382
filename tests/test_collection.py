"""Collection through pytest: one item per task file, selection, errors and skips, with and without xdist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support import ANCHOR

TASK = """\
id = "{id}"
repo = "{repo}"
repo_url = "https://example.invalid/{repo}.git"
title = "t"
base_commit = "{base}"
human_commit = "{human}"
tags = {tags}
status = "{status}"
status_reason = "{reason}"

[benchmark]
mode = "{mode}"
command = "python bench.py"
metric = "mean_ttft_ms"
gpus = {gpus}

[benchmark.origin]
command = {{ source = "archive" }}
metric = {{ source = "archive" }}
gpus = {{ source = "archive" }}
"""


def task_text(
    task_id: str,
    *,
    mode: str = "serving",
    gpus: int = 1,
    tags: str = "[]",
    status: str = "ready",
    reason: str = "",
) -> str:
    repo, short = task_id.split("-")
    human = (short * 5)[:40]
    return TASK.format(
        id=task_id,
        repo=repo,
        base="f" * 40,
        human=human,
        tags=tags,
        status=status,
        reason=reason,
        mode=mode,
        gpus=gpus,
    )


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """Five tasks: three vLLM (serving, latency, multi-GPU throughput), two SGLang (one incomplete)."""
    files = {
        "tasks/vllm/vllm-aaaaaaaa": task_text("vllm-aaaaaaaa"),
        "tasks/vllm/vllm-bbbbbbbb": task_text("vllm-bbbbbbbb", mode="latency", tags='["kernel"]'),
        "tasks/vllm/vllm-cccccccc": task_text("vllm-cccccccc", mode="throughput", gpus=4),
        "tasks/sglang/sglang-dddddddd": task_text("sglang-dddddddd"),
        "tasks/sglang/sglang-eeeeeeee": task_text(
            "sglang-eeeeeeee", status="incomplete", reason="no model known"
        ),
    }
    pytester.makefile(".toml", **files)
    pytester.makefile(".py", **{"tasks/test_isobench": ANCHOR})
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


DIST_MODES = {"single": [], "xdist2": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}


@pytest.fixture(params=list(DIST_MODES), ids=list(DIST_MODES))
def dist(request: pytest.FixtureRequest) -> list[str]:
    return DIST_MODES[request.param]


def collected(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::test_task[" in line)


def test_collects_one_item_per_task_in_order(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--collect-only", "-q")
    ids = [line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::test_task[" in line]
    assert ids == ["sglang-dddddddd", "sglang-eeeeeeee", "vllm-aaaaaaaa", "vllm-bbbbbbbb", "vllm-cccccccc"]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (["-k", "sglang"], ["sglang-dddddddd", "sglang-eeeeeeee"]),
        (["-m", "vllm"], ["vllm-aaaaaaaa", "vllm-bbbbbbbb", "vllm-cccccccc"]),
        (["-m", "vllm and serving"], ["vllm-aaaaaaaa"]),
        (["-m", "multi_gpu"], ["vllm-cccccccc"]),
        (["-m", "kernel"], ["vllm-bbbbbbbb"]),
        (["-m", "isobench(repo='sglang')"], ["sglang-dddddddd", "sglang-eeeeeeee"]),
    ],
)
def test_selection_with_k_and_m(suite: pytest.Pytester, selection: list[str], expected: list[str]) -> None:
    result = suite.runpytest("--collect-only", "-q", *selection)
    assert collected(result) == expected


def test_no_agent_skips_with_how_to(suite: pytest.Pytester, dist: list[str]) -> None:
    result = suite.runpytest("-rs", "-k", "vllm-aaaaaaaa", *dist)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no agent selected: pass --isobench-agent=NAME*"])


def test_incomplete_task_skips_with_its_reason(suite: pytest.Pytester, dist: list[str]) -> None:
    result = suite.runpytest("-rs", "--isobench-agent=noop", "-k", "sglang-eeeeeeee", *dist)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*sglang-eeeeeeee is incomplete: no model known*"])


def test_task_needing_gpus_skips_here(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = suite.runpytest("-rs", "--isobench-agent=noop", "-k", "vllm-cccccccc")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*vllm-cccccccc needs 4 GPU(s); 0 available*"])


def test_broken_file_errors_one_item_and_the_rest_collect(suite: pytest.Pytester, dist: list[str]) -> None:
    bad = suite.path / "tasks" / "vllm" / "vllm-ffffffff.toml"
    bad.write_text(task_text("vllm-ffffffff").replace("gpus = 1", 'gpus = "many"'))
    result = suite.runpytest("-k", "vllm-ffffffff or sglang-eeeeeeee", *dist)
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{bad}: benchmark.gpus: Input should be a valid integer*"])
    assert len(collected(suite.runpytest("--collect-only", "-q"))) == 6


def test_duplicate_ids_error_naming_both_files(suite: pytest.Pytester) -> None:
    copy = suite.path / "tasks" / "mirror" / "vllm-aaaaaaaa.toml"
    copy.parent.mkdir()
    copy.write_text(task_text("vllm-aaaaaaaa"))
    result = suite.runpytest("-k", "vllm-aaaaaaaa")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*duplicate task id 'vllm-aaaaaaaa'*mirror/vllm-aaaaaaaa.toml*"])


def test_unknown_agent_is_a_usage_error_listing_known_agents(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=gpt-17")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown agent 'gpt-17'; known agents: *command:SHELL, human, noop, replay:PATH*"]
    )


def test_unknown_backend_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-agent=noop", "--isobench-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'cloud'; known: docker, local*"])


def test_bad_option_value_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-rounds=zero")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-rounds: 'zero' is not a valid int*"])


def test_tasks_option_replaces_default_root(suite: pytest.Pytester) -> None:
    own = suite.path / "mine"
    own.mkdir()
    (own / "sglang-12345678.toml").write_text(task_text("sglang-12345678"))
    result = suite.runpytest("--collect-only", "-q", f"--isobench-tasks={own}", "tasks")
    assert collected(result) == ["sglang-12345678"]
    suite.makeini(f"[pytest]\naddopts = --strict-markers -p no:cacheprovider\nisobench_tasks = {own}\n")
    assert collected(suite.runpytest("--collect-only", "-q", "tasks")) == ["sglang-12345678"]


def test_missing_tasks_path_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--isobench-tasks=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-tasks:*nowhere does not exist*"])


def test_tasks_option_naming_a_folder_without_task_files_is_a_usage_error(suite: pytest.Pytester) -> None:
    empty = suite.path / "tasks" / "vlm"  # a typo: exists, holds no task file
    empty.mkdir()
    result = suite.runpytest(f"--isobench-tasks={empty}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--isobench-tasks: {empty}: no task files here*"])


def test_an_empty_default_task_folder_is_an_error_naming_it(suite: pytest.Pytester, dist: list[str]) -> None:
    for toml in (suite.path / "tasks").rglob("*.toml"):
        toml.unlink()
    result = suite.runpytest(*dist)
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    result.stdout.fnmatch_lines(
        [f"*isobench: {suite.path / 'tasks'}: no task files here*--isobench-tasks=PATH*"]
    )
    assert "got empty parameter set" not in result.stdout.str()


def test_replay_predictions_matching_no_task_are_warned_about_at_start(
    suite: pytest.Pytester, dist: list[str]
) -> None:
    preds = suite.path / "preds.jsonl"
    lines = [
        {"instance_id": "vllm-project__vllm-aaaaaaaa", "model_patch": ""},
        {"instance_id": "vllm-bbbbbbbb"},
    ]
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = suite.runpytest("--collect-only", f"--isobench-agent=replay:{preds}", *dist)
    result.stdout.fnmatch_lines(
        [
            "*IsobenchWarning: replay:*preds.jsonl: 1 of 2 prediction(s) match no selected task"
            " ('vllm-project__vllm-aaaaaaaa'); 4 selected task(s) have no prediction*",
        ]
    )
    assert result.stdout.str().count("match no selected task") == 1, "once, from the controller"
    preds.write_text(json.dumps({"instance_id": "vllm-aaaaaaaa", "model_patch": ""}) + "\n")
    result = suite.runpytest("--collect-only", f"--isobench-agent=replay:{preds}", *dist)
    assert "IsobenchWarning" not in result.stdout.str()


def test_help_gives_every_options_default_and_choices_and_the_environment(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    text = result.stdout.str()
    start = text.index("ISO-Bench:")
    section = text[start : text.index("\n\n", start)]  # the group ends at a blank line
    blocks = {}
    for block in re.split(r"\n  (?=--isobench-)", section)[1:]:
        flag = block.split("=", 1)[0].split()[0]
        blocks[flag] = " ".join(block.split())
    assert len(blocks) >= 20
    for flag, block in blocks.items():
        assert "default" in block, f"{flag} does not say its default: {block}"
        assert "env: ISOBENCH_" in block, f"{flag} does not name its environment variable: {block}"
    assert "local (default; trusted agents only), docker" in blocks["--isobench-backend"]
    assert "none (default), or files" in blocks["--isobench-hints"]
    assert "host (default): one measurement at a time" in blocks["--isobench-measure-lock"]
    assert "(default 60)" in blocks["--isobench-judge-timeout"]
    env = text[text.index("Environment variables (isobench):") :]
    for name in (
        "ISOBENCH_TASKS",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "DOCKER_HOST",
    ):
        assert f"\n  {name} " in env, name


def test_conftest_can_register_an_agent(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        from pytest_isobench.agents.base import AgentRun

        class Lazy:
            name = "lazy"
            def solve(self, ctx):
                return AgentRun()

        def pytest_isobench_agents():
            return {"lazy": lambda arg: Lazy()}
        """
    )
    result = suite.runpytest("--isobench-agent=gpt-17")
    result.stderr.fnmatch_lines(["*known agents: *command:SHELL, human, lazy, noop, replay:PATH*"])
    result = suite.runpytest("--collect-only", "-q", "--isobench-agent=lazy")
    assert result.ret == pytest.ExitCode.OK


def test_header_shows_settings_and_catalog(suite: pytest.Pytester, tmp_path: Path) -> None:
    result = suite.runpytest("--collect-only", "--isobench-agent=noop", "--isobench-rounds=3")
    result.stdout.fnmatch_lines(
        ["isobench: agent=noop backend=local rounds=3*", "isobench: 5 task file(s) from *"]
    )
