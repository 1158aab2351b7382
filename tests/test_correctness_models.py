"""Correctness declarations in task files, the paired statistics, the verdict rule and the options."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from pytest_isobench.correctness.base import combine
from pytest_isobench.correctness.lm_eval import LmEvalRun, compare_runs, lm_eval_argv
from pytest_isobench.correctness.paired import binomial_tail, mcnemar
from pytest_isobench.scoring import summarize
from pytest_isobench.tasks import GreedyCheck, LmEvalCheck, OutputCheck, PluginCheck, load_task_file
from support import write_source_task

GREEDY = '[correctness]\nkind = "greedy"\n'
TWO = '[[correctness]]\nkind = "greedy"\ntop_k = 3\n\n[[correctness]]\nkind = "lm_eval"\nlimit = 50\n'


def task_with(tmp_path: Path, correctness: str, *, server: bool = True) -> Path:
    task_file = write_source_task(
        tmp_path / "tasks", "toy-one", server="python server.py {port}" if server else None
    )
    task_file.write_text(task_file.read_text() + "\n" + textwrap.dedent(correctness))
    return task_file


def test_one_table_still_loads_as_one_check(tmp_path: Path) -> None:
    entry = load_task_file(task_with(tmp_path, GREEDY))
    (check,) = entry.task.correctness  # type: ignore[union-attr]
    assert isinstance(check, GreedyCheck) and check.top_k == 5 and check.max_tokens == 32


def test_several_checks_as_an_array_of_tables(tmp_path: Path) -> None:
    entry = load_task_file(task_with(tmp_path, TWO))
    greedy, lm_eval = entry.task.correctness  # type: ignore[union-attr]
    assert isinstance(greedy, GreedyCheck) and greedy.top_k == 3
    assert isinstance(lm_eval, LmEvalCheck) and lm_eval.limit == 50 and lm_eval.task == "gsm8k"


def test_an_unknown_kind_is_kept_for_a_conftest_check(tmp_path: Path) -> None:
    entry = load_task_file(task_with(tmp_path, '[correctness]\nkind = "same_files"\npath = "out.txt"\n'))
    (check,) = entry.task.correctness  # type: ignore[union-attr]
    assert isinstance(check, PluginCheck) and check.kind == "same_files" and check.path == "out.txt"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("correctness", "server", "message"),
    [
        (
            '[correctness]\nkind = "greedy"\ntop_k = 0\n',
            True,
            "correctness.0.greedy.top_k: Input should be greater",
        ),
        (
            '[correctness]\nkind = "greedy"\ntemperature = 1\n',
            True,
            "correctness.0.greedy.temperature: Extra inputs",
        ),
        (
            '[correctness]\nkind = "lm_eval"\nmodel_type = "hf"\n',
            True,
            "correctness.0.lm_eval.model_type: Input should be",
        ),
        ('[correctness]\nkind = "output"\n', True, "correctness.0.output.command: Field required"),
        (
            '[[correctness]]\nkind = "greedy"\n[[correctness]]\nkind = "greedy"\n',
            True,
            "two checks of kind 'greedy'",
        ),
        (GREEDY, False, "a greedy check asks the benchmark's server, but benchmark.server is not set"),
        ('[correctness]\nkind = "Bad Kind"\n', True, "correctness.0.plugin.kind: String should match"),
    ],
)
def test_bad_declarations_name_the_field(
    tmp_path: Path, correctness: str, server: bool, message: str
) -> None:
    entry = load_task_file(task_with(tmp_path, correctness, server=server))
    assert message in getattr(entry, "message", ""), entry


def test_binomial_tail_and_mcnemar_exact_values() -> None:
    assert binomial_tail(0, 5) == 1.0 and binomial_tail(6, 5) == 0.0
    assert binomial_tail(10, 10) == 2**-10
    assert binomial_tail(8, 10) == pytest.approx((math.comb(10, 8) + math.comb(10, 9) + 1) / 1024)
    human = {str(i): True for i in range(20)}
    agent = {str(i): i % 4 != 3 for i in range(20)} | {"extra": True}  # only shared items count
    paired = mcnemar(human, agent)
    assert (paired.items, paired.both_right, paired.human_only, paired.agent_only, paired.both_wrong) == (
        20,
        15,
        5,
        0,
        0,
    )
    assert paired.p_agent_worse == 2**-5 and paired.p_two_sided == 2**-4
    balanced = mcnemar({"a": True, "b": False}, {"a": False, "b": True})
    assert balanced.p_two_sided == 1.0 and balanced.p_agent_worse == 0.75


def run(correct: int, total: int = 100) -> LmEvalRun:
    return LmEvalRun(correct / total, {str(i): i < correct for i in range(total)}, total)


def test_the_verdict_is_the_tolerance_or_a_significant_paired_loss() -> None:
    config = LmEvalCheck(kind="lm_eval", tolerance=1.0)
    same = compare_runs(run(40), run(40), config)
    assert same["status"] == "pass" and same["paired"]["p_two_sided"] == 1.0
    one_item = compare_runs(run(40), run(39), config)  # 1 point below: inside the paper's tolerance
    assert one_item["status"] == "pass" and one_item["within_tolerance"] is True
    two_items = compare_runs(run(40), run(38), config)  # outside the tolerance, not significant
    assert two_items["status"] == "fail" and two_items["significantly_worse"] is False
    assert "more than 1 point(s) below" in two_items["reason"]
    loose = LmEvalCheck(kind="lm_eval", tolerance=10.0)
    worse = compare_runs(run(40), run(32), loose)  # inside 10 points, but 8 items lost and none won
    assert (
        worse["status"] == "fail"
        and worse["within_tolerance"] is True
        and worse["significantly_worse"] is True
    )
    assert worse["paired"]["p_agent_worse"] == pytest.approx(2**-8)
    better = compare_runs(run(32), run(40), config)
    assert better["status"] == "pass" and better["difference_pts"] == 8.0


def test_lm_eval_command_line() -> None:
    config = LmEvalCheck(kind="lm_eval", limit=20, num_fewshot=8, model_type="local-chat-completions")
    argv = lm_eval_argv(config, "http://127.0.0.1:9", "m", Path("out"), Path("data"))
    assert argv[1:5] == ["-m", "lm_eval", "run", "--model"] and "local-chat-completions" in argv
    model_args = argv[argv.index("--model_args") + 1]
    assert (
        "base_url=http://127.0.0.1:9/v1/chat/completions" in model_args
        and "tokenizer_backend=none" in model_args
    )
    assert argv[argv.index("--limit") + 1] == "20" and argv[argv.index("--num_fewshot") + 1] == "8"
    assert "--apply_chat_template" in argv and argv[argv.index("--include_path") + 1] == "data"
    assert "--log_samples" in argv


def test_combining_checks_a_fail_wins_then_an_error() -> None:
    passed = {"status": "pass", "kind": "greedy"}
    error = {"status": "error", "kind": "lm_eval", "reason": "lm-eval is not installed"}
    failed = {"status": "fail", "kind": "output", "reason": "output differs at line 1"}
    assert combine([passed])["status"] == "pass" and "reason" not in combine([passed])
    assert combine([passed, error]) | {"checks": []} == {
        "status": "error",
        "kind": "greedy+lm_eval",
        "checks": [],
        "reason": "lm_eval: lm-eval is not installed",
    }
    assert combine([error, failed, passed])["reason"] == "output: output differs at line 1"
    assert combine([])["status"] == "not_configured"


def test_the_summary_counts_hard_passes_that_are_incorrect() -> None:
    def record(task: str, hard: str, correctness: str | None) -> dict[str, object]:
        return {"task_id": task, "repo": "vllm", "agent": "a", "hard": hard, "correctness": correctness}

    records = [
        record("t1", "beats", "fail"),
        record("t2", "similar", "fail"),
        record("t3", "worse", "fail"),  # not a hard pass: not counted
        record("t4", "beats", "pass"),
        record("t5", "beats", None),
    ]
    (group,) = summarize(records)
    assert group["hard_pass_incorrect"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--isobench-correctness=sometimes"],
            "--isobench-correctness: 'sometimes' is not one of: passing, all, off",
        ),
        (["--isobench-lm-eval-data=missing"], "is not a folder (give the folder of lm-eval task YAMLs)"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_options_reach_the_settings(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    (pytester.path / "data").mkdir()
    pytester.makeini("[pytest]\nisobench_correctness = all\n")
    monkeypatch.setenv("ISOBENCH_CORRECTNESS_GATE", "1")
    pytester.makepyfile(
        test_settings="""
        def test_settings(isobench_settings):
            s = isobench_settings
            print(f"settings: {s.correctness} {s.correctness_gate} {s.lm_eval_data.name}")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--isobench-lm-eval-data=data", "-s")
    result.stdout.fnmatch_lines(["*settings: all True data*"])


def test_output_check_model_keeps_its_fields() -> None:
    check = OutputCheck(kind="output", command="python gen.py")
    assert check.timeout_s == 600.0
