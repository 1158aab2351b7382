"""The offline ``overlap`` judge and the diff reader behind it, on real ``git diff`` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_isobench.judge import JudgeInput, run_judges
from pytest_isobench.judge.diffs import apply_hunks, parse_diff
from pytest_isobench.judge.overlap import Unit, changed_units, compare_units
from support import diff_trees, make_tree

ENGINE = '''\
"""A toy engine."""
import math

BLOCK = 16


class Scheduler:
    def __init__(self):
        self.queue = []
        self.limit = 8
        self.steps = 0

    def schedule(self, reqs):
        out = []
        for r in reqs:
            out.append(r)
            self.steps += 1
        return out

    def preempt(self, req):
        self.queue.remove(req)
        self.steps -= 1
        return req


def sample(logits):
    best = max(logits)
    return logits.index(best)
'''
CONFIG = "".join(f"option_{i}: {i}\n" for i in range(40))
BASE: dict[str, str | bytes] = {
    "engine.py": ENGINE,
    "sampler.py": "def pick(xs):\n    return xs[0]\n",
    "config.yaml": CONFIG,
}

SCHEDULE_FAST = ENGINE.replace(
    "        for r in reqs:\n            out.append(r)\n            self.steps += 1\n",
    "        out.extend(reqs)\n        self.steps += len(reqs)\n",
)
SCHEDULE_OTHER = ENGINE.replace("        out = []\n", "        out = list()\n")
PREEMPT = ENGINE.replace("        self.queue.remove(req)\n", "        self.queue.discard(req)\n")
SAMPLE = ENGINE.replace(
    "    best = max(logits)\n    return logits.index(best)\n",
    "    return max(range(len(logits)), key=logits.__getitem__)\n",
)


def patch(tmp_path: Path, name: str, **changes: str) -> str:
    return diff_trees(BASE, {**BASE, **changes}, tmp_path / name)


@pytest.fixture
def base_tree(tmp_path: Path) -> Path:
    root = tmp_path / "base"
    make_tree(root, dict(BASE))
    return root


def verdict(tmp_path: Path, human: str, agent: str, base: Path | None) -> tuple[str, str]:
    judge_input = JudgeInput(
        task_id="t", description="d", human_patch=human, agent_patch=agent, base_tree=base
    )
    report = run_judges(["overlap"], judge_input, cache_dir=tmp_path / "cache")
    [v] = report.verdicts
    assert v.status == "ok", v.error
    assert v.bottleneck_target is not None and v.approach_comparison is None and v.order is None
    return v.bottleneck_target.category, v.bottleneck_target.rationale


CASES = [
    (
        "same function, different edit",
        {"engine.py": SCHEDULE_FAST},
        {"engine.py": SCHEDULE_OTHER},
        "same_target",
    ),
    (
        "another method of the same file",
        {"engine.py": SCHEDULE_FAST},
        {"engine.py": PREEMPT},
        "related_target",
    ),
    (
        "the human's function and one more",
        {"engine.py": SCHEDULE_FAST},
        {"engine.py": SCHEDULE_FAST.replace("self.queue.remove", "self.queue.discard")},
        "related_target",
    ),
    (
        "another file",
        {"engine.py": SCHEDULE_FAST},
        {"sampler.py": "def pick(xs):\n    return next(iter(xs))\n"},
        "different_target",
    ),
    (
        "only a comment",
        {"engine.py": SCHEDULE_FAST},
        {"engine.py": ENGINE.replace("    def preempt", "    # TODO: faster\n    def preempt")},
        "no_optimization",
    ),
    (
        "an import is noise next to a real change",
        {"engine.py": "import itertools\n" + SCHEDULE_FAST},
        {"engine.py": SCHEDULE_OTHER},
        "same_target",
    ),
    (
        "overlapping lines of a non-Python file",
        {"config.yaml": CONFIG.replace("option_20: 20", "option_20: 40")},
        {"config.yaml": CONFIG.replace("option_20: 20", "option_20: 80")},
        "same_target",
    ),
    (
        "distant lines of a non-Python file",
        {"config.yaml": CONFIG.replace("option_2: 2\n", "option_2: 4\n")},
        {"config.yaml": CONFIG.replace("option_35: 35", "option_35: 70")},
        "related_target",
    ),
    (
        "a new module on both sides",
        {"fast.py": "def f():\n    return 1\n"},
        {"fast.py": "def f():\n    return 2\n"},
        "same_target",
    ),
]


@pytest.mark.parametrize("with_base", [True, False], ids=["ast", "diff-only"])
@pytest.mark.parametrize(("human", "agent", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_overlap_categories(
    tmp_path: Path,
    base_tree: Path,
    with_base: bool,
    human: dict[str, str],
    agent: dict[str, str],
    expected: str,
) -> None:
    category, _ = verdict(
        tmp_path,
        patch(tmp_path, "h", **human),
        patch(tmp_path, "a", **agent),
        base_tree if with_base else None,
    )
    assert category == expected


def test_units_are_qualified_names_with_the_base_tree(tmp_path: Path, base_tree: Path) -> None:
    units, mode = changed_units(patch(tmp_path, "p", **{"engine.py": SCHEDULE_FAST}), base_tree)
    assert mode == "ast"
    assert units == {Unit("engine.py", "Scheduler.schedule")}
    units, mode = changed_units(patch(tmp_path, "q", **{"engine.py": SAMPLE}), base_tree)
    assert units == {Unit("engine.py", "sample")}


def test_added_code_is_mapped_in_the_patched_text(tmp_path: Path, base_tree: Path) -> None:
    added = ENGINE + "\n\ndef fast_sample(logits):\n    return 0\n"
    units, _ = changed_units(patch(tmp_path, "p", **{"engine.py": added}), base_tree)
    assert units == {Unit("engine.py", "fast_sample")}


def test_diff_only_mode_uses_hunk_context(tmp_path: Path) -> None:
    text = patch(tmp_path, "p", **{"engine.py": PREEMPT})
    assert "@@ class Scheduler:" in text or "def preempt" in text  # git's function context
    units, mode = changed_units(text, None)
    assert mode == "diff"
    assert units == {Unit("engine.py", "Scheduler.preempt")}


def test_hunks_that_do_not_fit_the_base_fall_back_to_the_diff(tmp_path: Path) -> None:
    other = tmp_path / "other"
    make_tree(other, {**BASE, "engine.py": "x = 1\n" * 50})
    units, mode = changed_units(patch(tmp_path, "p", **{"engine.py": SCHEDULE_FAST}), other)
    assert mode == "diff"
    assert units == {Unit("engine.py", "Scheduler.schedule")}


def test_names_match_when_one_lacks_the_class() -> None:
    assert Unit("a.py", "forward").matches(Unit("a.py", "Layer.forward"))
    assert not Unit("a.py", "forward").matches(Unit("a.py", "Layer.backward"))
    assert not Unit("a.py", "f").matches(Unit("b.py", "f"))
    assert compare_units({Unit("a.py", "f")}, set())[0] == "no_optimization"


def test_empty_human_patch_is_a_judge_error(tmp_path: Path) -> None:
    judge_input = JudgeInput(
        task_id="t",
        description="",
        human_patch="",
        agent_patch=patch(tmp_path, "a", **{"engine.py": PREEMPT}),
    )
    [v] = run_judges(["overlap"], judge_input, cache_dir=tmp_path).verdicts
    assert v.status == "judge_error" and v.error is not None and "human patch" in v.error


def test_apply_hunks_rebuilds_the_patched_file(tmp_path: Path) -> None:
    text = patch(
        tmp_path,
        "p",
        **{"engine.py": SAMPLE.replace("BLOCK = 16", "BLOCK = 32"), "config.yaml": CONFIG + "x: 1\n"},
    )
    files = {f.path: f for f in parse_diff(text)}
    assert set(files) == {"engine.py", "config.yaml"}
    assert apply_hunks(ENGINE, files["engine.py"]) == SAMPLE.replace("BLOCK = 16", "BLOCK = 32")
    assert apply_hunks(CONFIG, files["config.yaml"]) == CONFIG + "x: 1\n"
    assert apply_hunks("something else\n", files["engine.py"]) is None


def test_plain_unified_diff_without_git_headers() -> None:
    text = (
        "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n"
        "--- a/y.txt\n+++ b/y.txt\n@@ -1 +1 @@\n--- old\n+--- new\n"
    )
    files = parse_diff(text)
    assert [f.path for f in files] == ["x.py", "y.txt"]
    assert [line.text for line in files[1].hunks[0].lines] == ["-- old", "--- new"]
    units, _ = changed_units(text)
    assert units == {Unit("x.py", "f"), Unit("y.txt", span=(1, 1))}


def test_patched_code_that_does_not_parse_falls_back_to_the_diff(tmp_path: Path, base_tree: Path) -> None:
    broken = ENGINE.replace("        self.queue.remove(req)\n", "        self.queue.remove(req\n")
    units, mode = changed_units(patch(tmp_path, "p", **{"engine.py": broken}), base_tree)
    assert mode == "diff"
    assert units == {Unit("engine.py", "Scheduler.preempt")}


ODD_NAMES = ["my file.py", "café.py", 'tab\t"q".py', "dir b/x.py"]


def test_paths_with_spaces_quotes_and_non_ascii_are_read_unquoted(tmp_path: Path) -> None:
    before: dict[str, str | bytes] = {name: ENGINE for name in ODD_NAMES}
    after: dict[str, str | bytes] = {name: SCHEDULE_FAST for name in ODD_NAMES}
    text = diff_trees(before, after, tmp_path / "d")
    assert '"a/caf\\303\\251.py"' in text, "git quotes the non-ASCII name"
    files = parse_diff(text)
    assert sorted(f.path for f in files) == sorted(ODD_NAMES)
    assert all(f.old_path == f.new_path and len(f.hunks) == 1 for f in files)


def test_overlap_judge_finds_a_non_ascii_file_in_the_base_tree(tmp_path: Path) -> None:
    base = tmp_path / "base"
    make_tree(base, {"café.py": ENGINE})
    human = diff_trees({"café.py": ENGINE}, {"café.py": SCHEDULE_FAST}, tmp_path / "h")
    agent = diff_trees({"café.py": ENGINE}, {"café.py": SCHEDULE_OTHER}, tmp_path / "a")
    units, mode = changed_units(agent, base)
    assert mode == "ast" and units == {Unit("café.py", "Scheduler.schedule")}
    assert verdict(tmp_path, human, agent, base)[0] == "same_target"
