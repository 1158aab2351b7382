"""The lm_eval check with the real lm-eval, offline, against the fake completions server on 127.0.0.1.

A toy task whose benchmark server is the fake server answering a generated GSM8K-format set: the
human's tree answers every item right; an agent patch that is faster and answers every fourth item
wrongly fails the check with the paired counts and the exact McNemar p-value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from correctness_toy import replay, served_task
from fake_completions_server import write_gsm8k
from pytest_isobench.pipeline import run_job
from test_pipeline import job

pytest.importorskip(
    "lm_eval", reason="lm-eval is an optional extra: pip install 'pytest-isobench[correctness]'"
)

ITEMS = 40


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gsm8k(tmp_path_factory.mktemp("gsm8k"), test=ITEMS)


def gsm8k(data: Path) -> dict[str, object]:
    """The server flags that make it answer the generated GSM8K-format set, every item right."""
    return {"gsm8k": data / "test.jsonl"}


def test_lm_eval_passes_a_correct_patch_and_fails_a_wrong_one_with_paired_counts(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # lm-eval's datasets cache, not the user's
    task_file = served_task(
        tmp_path, f'kind = "lm_eval"\ntask = "gsm8k"\nlimit = {ITEMS}\ntolerance = 1.0\n', **gsm8k(data)
    )

    right = replay(tmp_path, "right", "0.02", gsm8k(data))
    correct = run_job(job(tmp_path, task_file, right, lm_eval_data=data, run_id="run1"))
    assert correct.hard in ("beats", "similar"), correct.hard_detail
    assert correct.correctness == "pass", correct.correctness_detail
    (check,) = correct.correctness_detail["checks"]
    assert check["human_accuracy_pct"] == 100.0 and check["agent_accuracy_pct"] == 100.0
    assert check["paired"]["items"] == ITEMS and check["paired"]["both_right"] == ITEMS
    assert check["paired"]["p_two_sided"] == 1.0 and check["within_tolerance"] is True
    assert check["human_source"] == "fresh"
    art = Path(correct.artifacts) / "correctness" / "lm_eval"
    assert list((art / "agent" / "lm-eval").rglob("samples_gsm8k_*.jsonl"))
    assert "--include_path" in (art / "human" / "command.txt").read_text()

    every_fourth = replay(tmp_path, "wrong", "0.02", gsm8k(data), wrong_every=4)
    wrong = run_job(job(tmp_path, task_file, every_fourth, lm_eval_data=data, run_id="run2"))
    assert wrong.hard in ("beats", "similar"), wrong.hard_detail  # faster: it passes the hard gate
    assert wrong.correctness == "fail", wrong.correctness_detail
    (check,) = wrong.correctness_detail["checks"]
    assert check["human_source"] == "cache"  # the human's run from the first job
    assert check["human_accuracy_pct"] == 100.0 and check["agent_accuracy_pct"] == 75.0
    assert check["within_tolerance"] is False and check["significantly_worse"] is True
    paired = check["paired"]
    assert (paired["human_only"], paired["agent_only"], paired["both_right"]) == (10, 0, 30)
    assert paired["p_agent_worse"] == pytest.approx(2**-10, abs=1e-6)
    assert paired["p_two_sided"] == pytest.approx(2**-9, abs=1e-6)
    assert "10 right only for the human, 0 only for the agent" in wrong.correctness_detail["reason"]
