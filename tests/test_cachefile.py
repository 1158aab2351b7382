"""The checksummed cache files shared by the measurement cache and the correctness checks' cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_isobench.cachefile import ChecksummedStore, source_hash
from pytest_isobench.correctness import cache as correctness_cache
from pytest_isobench.correctness.cache import HumanResultCache
from pytest_isobench.measure import cache as measure_cache
from pytest_isobench.measure.cache import MeasurementCache
from support import load, write_source_task

KEY = "ab" * 32


def entry_file(path: Path, fmt: int, content: dict[str, Any]) -> None:
    """An entry in the layout both caches have always written, checksummed here by hand."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": fmt, "checksum": digest, "content": content}), encoding="utf-8")


def test_entries_in_the_existing_layout_load_in_both_caches(tmp_path: Path) -> None:
    task = load(write_source_task(tmp_path / "tasks", "toy-sleep"))
    run = {"variant": "baseline", "round": 0, "status": "ok", "metrics": {"tput": 2.5}}
    measured = tmp_path / "cache" / "measurements" / "toy-sleep" / f"baseline-{KEY[:24]}.json"
    entry_file(measured, measure_cache.CACHE_FORMAT, {"key": KEY, "runs": [run], "info": {"run_id": "r0"}})
    entry, problem = MeasurementCache(tmp_path / "cache").load(task, "baseline", KEY)
    assert problem is None and entry is not None
    assert entry.runs[0].metrics == {"tput": 2.5} and entry.info == {"run_id": "r0"}

    human = tmp_path / "cache" / "correctness" / "toy-sleep" / f"greedy-{KEY[:24]}.json"
    result = [{"tokens": [" a"]}]
    entry_file(human, correctness_cache.CACHE_FORMAT, {"key": KEY, "result": result, "info": {}})
    assert HumanResultCache(tmp_path / "cache").load(task, "greedy", KEY) == (result, None)


def test_both_caches_write_that_layout(tmp_path: Path) -> None:
    task = load(write_source_task(tmp_path / "tasks", "toy-sleep"))
    HumanResultCache(tmp_path / "cache").store(task, "lm_eval", KEY, {"acc": 0.5}, {"run_id": "r1"})
    path = tmp_path / "cache" / "correctness" / "toy-sleep" / f"lm_eval-{KEY[:24]}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"format", "checksum", "content"} and data["format"] == correctness_cache.CACHE_FORMAT
    canonical = json.dumps(data["content"], sort_keys=True).encode()
    assert data["checksum"] == hashlib.sha256(canonical).hexdigest()
    assert data["content"]["key"] == KEY and data["content"]["result"] == {"acc": 0.5}
    assert data["content"]["info"]["run_id"] == "r1" and data["content"]["info"]["stored_at"]


def test_a_tampered_or_unreadable_entry_is_deleted_and_says_why(tmp_path: Path) -> None:
    store = ChecksummedStore(tmp_path, 3)
    store.store("t", "human", {"key": KEY, "value": 1})
    path = store.path("t", "human", KEY)
    assert store.load("t", "human", KEY, lambda c: c["value"]) == (1, None)

    data = json.loads(path.read_text(encoding="utf-8"))
    data["content"]["value"] = 2
    path.write_text(json.dumps(data), encoding="utf-8")
    value, problem = store.load("t", "human", KEY, lambda c: c["value"])
    assert value is None and problem is not None and "checksum does not match" in problem
    assert not path.exists()
    assert store.load("t", "human", KEY, lambda c: c["value"]) == (None, None)

    path.write_text("{not json", encoding="utf-8")
    assert store.load("t", "human", KEY, lambda c: c) == (None, "it cannot be read (JSONDecodeError)")
    assert not path.exists()

    store.store("t", "human", {"key": KEY, "value": 1})  # checksum fine, but the parser rejects it
    assert store.load("t", "human", KEY, lambda c: c["missing"]) == (None, "it cannot be read (KeyError)")
    assert not path.exists()


@pytest.mark.parametrize("change", ["format", "key"])
def test_an_entry_of_another_format_or_key_is_ignored_and_kept(tmp_path: Path, change: str) -> None:
    store = ChecksummedStore(tmp_path, 3)
    other_key = KEY[:24] + "cd" * 20  # same file name, another full key
    entry_file(
        store.path("t", "human", KEY),
        2 if change == "format" else 3,
        {"key": KEY if change == "format" else other_key, "value": 1},
    )
    assert store.load("t", "human", KEY, lambda c: c["value"]) == (None, None)
    assert store.path("t", "human", KEY).exists()


def test_the_source_hash_follows_the_python_files_only(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("one")
    before = source_hash(tmp_path)
    (tmp_path / "notes.txt").write_text("two")
    assert source_hash(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_hash(tmp_path) != before
