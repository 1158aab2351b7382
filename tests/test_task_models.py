"""Task file validation: every problem names the file, the dotted field path and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_isobench.tasks import (
    BrokenTaskFile,
    LoadedTask,
    curation_gaps,
    load_catalog,
    load_task_file,
    metric_lower_is_better,
)

GOOD = """\
id = "vllm-ad8d696a"
repo = "vllm"
repo_url = "https://github.com/vllm-project/vllm"
pr_url = "https://github.com/vllm-project/vllm/pull/4270"
title = "Scheduler perf fix"
base_commit = "3d925165f2b18379640a63fbb42de95440d63b64"
human_commit = "ad8d696a99ca1eee19f1404e16e8e82df592ff85"
target_files = ["vllm/core/scheduler.py"]
tags = ["scheduler"]
status = "ready"

[benchmark]
mode = "serving"
server = "python -m vllm.entrypoints.openai.api_server --model m --port {port}"
command = "python benchmarks/benchmark_serving.py --model m --port {port}"
metric = "mean_ttft_ms"
model = "m"
gpus = 2

[benchmark.origin]
command = { source = "archive" }
server = { source = "curated", reason = "the archive has no server command" }
metric = { source = "curated", reason = "the paper's primary metric for serving" }
model = { source = "archive" }
gpus = { source = "archive" }
"""


def write(tmp_path: Path, text: str, name: str = "vllm-ad8d696a", folder: str = "vllm") -> Path:
    path = tmp_path / folder / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def broken(tmp_path: Path, text: str) -> str:
    entry = load_task_file(write(tmp_path, text))
    assert isinstance(entry, BrokenTaskFile), entry
    return entry.message


def test_good_file_loads_with_marks(tmp_path: Path) -> None:
    entry = load_task_file(write(tmp_path, GOOD))
    assert isinstance(entry, LoadedTask)
    assert entry.task.marks == ["vllm", "serving", "multi_gpu", "scheduler"]
    assert entry.task.benchmark.lower_is_better


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (("gpus = 2", 'gpus = "two"'), "benchmark.gpus", "valid integer"),
        (('mode = "serving"', 'mode = "offline"'), "benchmark.mode", "'serving'"),
        (('base_commit = "3d92', 'base_commit = "zz92'), "base_commit", "pattern"),
        (('tags = ["scheduler"]', 'tags = ["Not-A-Marker"]'), "tags", "valid marker name"),
        (('tags = ["scheduler"]', 'tags = ["skip"]'), "tags", "reserved"),
        (('title = "Scheduler perf fix"', 'title = "x"\ncolour = "red"'), "colour", "Extra inputs"),
        (('status = "ready"', 'status = "incomplete"'), "<file>", "status_reason"),
        (
            ('reason = "the archive has no server command"', 'reason = ""'),
            "benchmark.origin.server",
            "reason",
        ),
        (
            ('gpus = { source = "archive" }', 'gpus = { source = "archive" }\nport = { source = "archive" }'),
            "benchmark",
            "origin has entries for ['port']",
        ),
        (('metric = "mean_ttft_ms"\n', ""), "<file>", "benchmark.metric is missing"),
    ],
)
def test_invalid_field_is_named(tmp_path: Path, change: tuple[str, str], field: str, words: str) -> None:
    assert change[0] in GOOD
    message = broken(tmp_path, GOOD.replace(*change))
    path = tmp_path / "vllm" / "vllm-ad8d696a.toml"
    assert message.startswith(f"{path}: {field}:"), message
    assert words in message


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    message = broken(tmp_path, GOOD.replace('title = "Scheduler perf fix"', "title = "))
    assert "invalid TOML" in message and "line 5" in message


def test_id_must_match_file_name(tmp_path: Path) -> None:
    entry = load_task_file(write(tmp_path, GOOD, name="other"))
    assert isinstance(entry, BrokenTaskFile)
    assert "id: 'vllm-ad8d696a' does not match the file name" in entry.message


def test_exactly_one_of_repo_url_and_source(tmp_path: Path) -> None:
    text = GOOD.replace('repo_url = "https://github.com/vllm-project/vllm"\n', "")
    assert "exactly one of `repo_url`" in broken(tmp_path, text)


def test_duplicate_ids_error_both_files_and_keep_the_rest(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD, folder="mirror")
    other = GOOD.replace(
        "ad8d696a99ca1eee19f1404e16e8e82df592ff85", "bd8d696a99ca1eee19f1404e16e8e82df592ff85"
    )
    write(tmp_path, other.replace('id = "vllm-ad8d696a"', 'id = "vllm-bd8d696a"'), name="vllm-bd8d696a")
    entries = load_catalog([tmp_path])
    dupes = [e for e in entries if isinstance(e, BrokenTaskFile)]
    assert len(dupes) == 2
    for entry in dupes:
        assert "duplicate task id 'vllm-ad8d696a'" in entry.message
        assert str(tmp_path / "vllm" / "vllm-ad8d696a.toml") in entry.message
        assert str(tmp_path / "mirror" / "vllm-ad8d696a.toml") in entry.message
    assert len({e.id for e in dupes}) == 2
    assert [e.id for e in entries if isinstance(e, LoadedTask)] == ["vllm-bd8d696a"]


def test_catalog_order_is_deterministic_and_skips_deep_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    deep = tmp_path / "smoke" / "tree" / "base" / "pyproject.toml"
    deep.parent.mkdir(parents=True)
    deep.write_text("[project]\nname = 'x'\n")
    assert [e.path for e in load_catalog([tmp_path])] == [tmp_path / "vllm" / "vllm-ad8d696a.toml"]


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("mean_ttft_ms", True),
        ("p99_itl_ms", True),
        ("avg_latency", True),
        ("output_throughput", False),
        ("tokens_per_second", False),
        ("request_throughput", False),
        ("median_e2el_ms", True),
    ],
)
def test_metric_direction(metric: str, lower: bool) -> None:
    assert metric_lower_is_better(metric) is lower


@pytest.mark.parametrize("bad", ["/opt/src/python", "../python", "python/../..", " "])
def test_import_root_must_stay_inside_the_tree(tmp_path: Path, bad: str) -> None:
    url = 'repo_url = "https://github.com/vllm-project/vllm"\n'
    message = broken(tmp_path, GOOD.replace(url, f'{url}import_root = "{bad}"\n'))
    assert "import_root" in message and "must be a folder inside the tree" in message


def test_origin_is_optional_for_a_users_own_task(tmp_path: Path) -> None:
    own = GOOD[: GOOD.index("[benchmark.origin]")]
    entry = load_task_file(write(tmp_path, own))
    assert isinstance(entry, LoadedTask), getattr(entry, "message", "")
    assert entry.task.benchmark.origin == {}
    assert entry.task.benchmark.missing_origins == ["command", "server", "metric", "model", "gpus"]
    [gap] = [g for g in curation_gaps(entry.task) if g.startswith("benchmark.origin")]
    assert "no origin recorded for ['command', 'server'," in gap and "origin.command =" in gap
