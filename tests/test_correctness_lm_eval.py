"""The lm_eval check with the real lm-eval, offline, against the fake completions server on 127.0.0.1.

A toy task whose benchmark server is the fake server answering a generated GSM8K-format set: the
human's tree answers every item right; an agent patch that is faster and answers every fourth item
wrongly fails the check with the paired counts and the exact McNemar p-value.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fake_completions_server import write_gsm8k
from pytest_isobench.pipeline import Job, run_job
from support import BENCH_PY, WORK_PY, diff_trees, write_source_task
from test_pipeline import job

pytest.importorskip(
    "lm_eval", reason="lm-eval is an optional extra: pip install 'pytest-isobench[correctness]'"
)

HELPER = Path(__file__).resolve().parent / "fake_completions_server.py"
ITEMS = 40


def serve_py(data: Path, wrong_every: int) -> str:
    return (
        '"""The model server: the fake completions server on the answer key."""\n'
        "import runpy, sys\n"
        f"WRONG_EVERY = {wrong_every}\n"
        f"sys.argv = [{str(HELPER)!r}, '--port', sys.argv[1], '--gsm8k', {str(data / 'test.jsonl')!r},"
        " '--wrong-every', str(WRONG_EVERY)]\n"
        f"runpy.run_path({str(HELPER)!r}, run_name='__main__')\n"
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gsm8k(tmp_path_factory.mktemp("gsm8k"), test=ITEMS)


def lm_eval_task(tmp_path: Path, data: Path) -> Path:
    base = {"bench.py": BENCH_PY, "work.py": WORK_PY, "serve.py": serve_py(data, 0)}
    task_file = write_source_task(
        tmp_path / "tasks",
        "toy-sleep",
        base=base,
        server="python serve.py {port}",
        extra="server_timeout_s = 30",
    )
    task_file.write_text(
        task_file.read_text()
        + f'\n[correctness]\nkind = "lm_eval"\ntask = "gsm8k"\nlimit = {ITEMS}\ntolerance = 1.0\n'
    )
    return task_file


def replay(tmp_path: Path, data: Path, wrong_every: int) -> str:
    """An agent patch that makes the step faster and, with ``wrong_every``, the answers wrong."""
    before = {"work.py": WORK_PY, "serve.py": serve_py(data, 0)}
    after = {"work.py": WORK_PY.replace("0.06", "0.02"), "serve.py": serve_py(data, wrong_every)}
    scratch = tmp_path / f"diff-{wrong_every}"
    scratch.mkdir()
    patch = diff_trees(before, after, scratch)
    preds = tmp_path / f"preds-{wrong_every}.jsonl"
    preds.write_text(json.dumps({"instance_id": "toy-sleep", "model_patch": patch}) + "\n")
    return f"replay:{preds}"


def test_lm_eval_passes_a_correct_patch_and_fails_a_wrong_one_with_paired_counts(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # lm-eval's datasets cache, not the user's
    task_file = lm_eval_task(tmp_path, data)

    correct = run_job(lm_eval_job(tmp_path, task_file, replay(tmp_path, data, 0), data, "run1"))
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

    wrong = run_job(lm_eval_job(tmp_path, task_file, replay(tmp_path, data, 4), data, "run2"))
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


def lm_eval_job(tmp_path: Path, task_file: Path, spec: str, data: Path, run_id: str) -> Job:
    base = job(tmp_path, task_file, spec)
    return replace(base, run_id=run_id, settings=replace(base.settings, lm_eval_data=data, run_id=run_id))
