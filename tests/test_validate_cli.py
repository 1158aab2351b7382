"""`python -m pytest_isobench validate`: the same messages as collection, and what curation still lacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_task_models import GOOD, write


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_isobench", "validate", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_broken_file_fails_with_file_field_and_reason(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    bad = write(
        tmp_path, GOOD.replace("gpus = 2", "gpus = -1").replace("ad8d696a", "bd8d696a"), "vllm-bd8d696a"
    )
    result = validate(str(tmp_path))
    assert result.returncode == 1
    assert f"{bad}: benchmark.gpus: Input should be greater than or equal to 0" in result.stdout
    assert "2 task file(s): 1 valid, 1 broken" in result.stdout


def test_curation_gaps_are_reported_and_fail_only_when_strict(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = validate(str(path))
    assert result.returncode == 0
    assert f"{path}: description: empty" in result.stdout
    assert f"{path}: correctness: missing" in result.stdout
    assert validate("--strict", str(path)).returncode == 1
    done = GOOD.replace('status = "ready"', 'status = "ready"\ndescription = "Slow."')
    done += '\n[correctness]\nkind = "lm_eval"\n'
    path.write_text(done)
    result = validate("--strict", str(path))
    assert result.returncode == 0 and "0 broken, 0 not fully curated" in result.stdout


def test_missing_path(tmp_path: Path) -> None:
    result = validate(str(tmp_path / "nope"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_a_folder_without_task_files_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "vllm").mkdir()  # e.g. a typo for the folder that holds the tasks
    result = validate(str(tmp_path / "vllm"))
    assert result.returncode == 2
    assert f"{tmp_path / 'vllm'}: no task files here" in result.stderr
    assert "0 task file(s)" not in result.stdout


def test_source_paths_must_exist(tmp_path: Path) -> None:
    text = GOOD.replace('repo_url = "https://github.com/vllm-project/vllm"\n', "").replace(
        "[benchmark]", '[source]\ntree = "base"\npatch = "human.diff"\n\n[benchmark]', 1
    )
    path = write(tmp_path, text)
    result = validate(str(path))
    assert result.returncode == 1, result.stdout
    assert f"{path}: source.tree: {path.parent / 'base'} is not a directory" in result.stdout
    assert f"{path}: source.patch: {path.parent / 'human.diff'} is not a file" in result.stdout
    (path.parent / "base").mkdir()
    (path.parent / "human.diff").write_text("diff --git a/x b/x\n")
    result = validate(str(path))
    assert result.returncode == 0 and "1 valid, 0 broken" in result.stdout, result.stdout
