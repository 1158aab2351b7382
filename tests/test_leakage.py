"""No task description (or rendered agent prompt) gives away the human change it is scored against.

For every task of the bundled catalog (``tasks/``), the human diff is compared with the task's
``description`` and with ``render_prompt(task, Path("/workspace/repo"))``. The text leaks, and the task's
item fails, when it contains any of:

1. **An added identifier**, matched as a whole word (regex ``\\b...\\b``), case-sensitive. Candidates are
   the names a ``+`` line of the diff defines: ``def NAME``, ``class NAME``, assignment targets at the
   start of a line (``NAME =``, ``a, b =``, ``self.NAME =``/``obj.NAME =`` giving ``NAME``,
   ``NAME: type =``, ``NAME: type`` alone on a line, which includes a parameter line of a multi-line
   signature; a keyword argument alone on a line, ``NAME=value,``, has the same shape and counts
   too), ``for NAME in`` targets and ``as NAME`` targets. A candidate is
   *added* when it does not occur as a whole word on any ``-`` line or context line (including hunk
   headers) of the same diff. It is *distinctive*, and only then checked, when it is not a Python
   keyword or builtin, has at least 4 characters, and (a) has an underscore between two letters or
   digits, or (b) has a lowercase letter followed by an uppercase one (``camelCase``/``PascalCase``),
   or (c) has at least 10 characters and is not a plain all-lowercase word (``throughput`` and
   ``allocation`` are ordinary English, ``MAXBATCHSIZE`` or ``fp8dequantize`` are not).
2. **An added string literal**: the body of a quoted literal (``"..."``, ``'...'``, one-line triple
   quotes) on a ``+`` line with at least 8 non-space characters, that is not a substring of any ``-``
   or context line; matched as a case-sensitive substring.
3. **A changed diff line**: a ``+`` or ``-`` line (file headers excluded), stripped, with at least 12
   non-space characters, appearing verbatim (case-sensitive substring).

The diff comes from ``shared/isobench/human-commits/<task-id>.json`` (``diff_text``) when that folder
sits beside the repository clone; otherwise from ``git diff base human`` in a clone that already
exists in the harness cache (``.isobench/cache/repos/``) or at a local ``repo_url`` (the test never
clones from the network). Smoke tasks use their ``fix.diff``. A task is skipped only when none of
these is available, and the skip says so. An empty description passes (presence is ``validate``'s
job); the rendered prompt is still checked.
"""

from __future__ import annotations

import builtins
import json
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_isobench.agents.prompt import render_prompt
from pytest_isobench.sandbox import repos
from pytest_isobench.sandbox.gitutil import GitError, git, has_object
from pytest_isobench.tasks import BrokenTaskFile, LoadedTask, Task, load_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS_ROOT = REPO_ROOT / "tasks"
# The CI machine puts `shared/` beside the repository clone.
HUMAN_COMMITS = Path(__file__).resolve().parents[2] / "shared" / "isobench" / "human-commits"
CACHE_REPOS = REPO_ROOT / ".isobench" / "cache" / "repos"
PROMPT_WORKDIR = Path("/workspace/repo")

MIN_IDENTIFIER = 4
LONG_IDENTIFIER = 10
MIN_LITERAL = 8
MIN_LINE = 12

GENERIC_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_NAME = r"[A-Za-z_]\w*"
_DEF = re.compile(rf"\b(?:def|class)\s+({_NAME})")
# Assignment targets at the start of a line: `a`, `a.b.c`, `a, b`, `(a, b)`, then an optional
# annotation, then `=` that is not `==` (augmented assignments like `+=` do not define anything).
_ASSIGN = re.compile(
    rf"^\s*\(?\s*(?P<targets>{_NAME}(?:\.{_NAME})*(?:\s*,\s*\*?{_NAME}(?:\.{_NAME})*)*)\s*,?\s*\)?"
    r"\s*(?::\s*(?P<annotation>[^=]*?))?\s*(?<![=!<>+\-*/%&|^@:])=(?!=)"
)
_ANNOTATION_ONLY = re.compile(rf"^\s*(?:self\.)?({_NAME})\s*:\s*[A-Za-z_][\w.\[\], |\"']*\s*$")
_FOR = re.compile(r"\bfor\s+\(?([\w\s,.*]+?)\)?\s+in\b")
_AS = re.compile(rf"\bas\s+({_NAME})\b")
_LITERAL = re.compile(
    r'"""(?P<d3>.*?)"""|\'\'\'(?P<s3>.*?)\'\'\'|"(?P<d>(?:[^"\\]|\\.)*)"|\'(?P<s>(?:[^\'\\]|\\.)*)\''
)
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@(.*)$")


@dataclass(frozen=True)
class DiffSides:
    """The lines of a unified diff, without their marker: added, removed, and unchanged context."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    context: tuple[str, ...]


def split_diff(diff_text: str) -> DiffSides:
    """Split a unified diff into its added, removed and context lines (hunk headers count as context).

    Lines are read hunk by hunk using the line counts of each ``@@`` header, so file headers
    (``diff --git``, ``---``/``+++``, ``index``) are never mistaken for changed lines.
    """
    added: list[str] = []
    removed: list[str] = []
    context: list[str] = []
    old_left = new_left = 0
    for line in diff_text.splitlines():
        if old_left > 0 or new_left > 0:
            if line.startswith("+"):
                added.append(line[1:])
                new_left -= 1
            elif line.startswith("-"):
                removed.append(line[1:])
                old_left -= 1
            elif not line.startswith("\\"):  # "\ No newline at end of file" is no line of either side
                context.append(line[1:])
                old_left, new_left = old_left - 1, new_left - 1
            continue
        hunk = _HUNK.match(line)
        if hunk:
            old_left = int(hunk.group(1) or 1)
            new_left = int(hunk.group(2) or 1)
            context.append(hunk.group(3))
    return DiffSides(tuple(added), tuple(removed), tuple(context))


def is_distinctive(name: str) -> bool:
    """Whether an identifier is specific enough that naming it in prose points at the change."""
    if len(name) < MIN_IDENTIFIER or name in GENERIC_NAMES:
        return False
    if re.search(r"[A-Za-z0-9]_[A-Za-z0-9]", name) or re.search(r"[a-z][A-Z]", name):
        return True
    return len(name) >= LONG_IDENTIFIER and not re.fullmatch(r"[a-z]+", name)


def defined_names(line: str) -> set[str]:
    """Names one (added) source line defines: def/class, assignment and loop/`as` targets."""
    names = set(_DEF.findall(line))
    match = _ASSIGN.match(line)
    if match:
        for target in match.group("targets").split(","):
            names.add(target.strip().lstrip("*").split(".")[-1])
    names.update(_ANNOTATION_ONLY.findall(line))
    for targets in _FOR.findall(line):
        names.update(re.findall(_NAME, targets))
    names.update(_AS.findall(line))
    return {name for name in names if name}


def _words(lines: Iterable[str]) -> set[str]:
    return {word for line in lines for word in re.findall(r"\w+", line)}


def added_identifiers(diff: DiffSides) -> set[str]:
    """Distinctive names defined on added lines that no removed or context line mentions."""
    old = _words(diff.removed) | _words(diff.context)
    candidates = {name for line in diff.added for name in defined_names(line)}
    return {name for name in candidates if name not in old and is_distinctive(name)}


def added_literals(diff: DiffSides) -> set[str]:
    """Bodies of quoted literals on added lines (>= MIN_LITERAL non-space chars) absent from the old side."""
    old = diff.removed + diff.context
    found = set()
    for line in diff.added:
        for match in _LITERAL.finditer(line):
            body = next(group for group in match.groups() if group is not None)
            if len(re.sub(r"\s", "", body)) >= MIN_LITERAL and not any(body in other for other in old):
                found.add(body)
    return found


def changed_lines(diff: DiffSides) -> set[str]:
    """Stripped added and removed lines with at least MIN_LINE non-space characters."""
    lines = (line.strip() for line in (*diff.added, *diff.removed))
    return {line for line in lines if len(re.sub(r"\s", "", line)) >= MIN_LINE}


def find_leaks(diff_text: str, text: str) -> list[str]:
    """Every piece of the human diff that `text` repeats, as readable problem lines (empty: clean)."""
    if not text.strip():
        return []
    diff = split_diff(diff_text)
    leaks = [
        f"added identifier {name!r}"
        for name in sorted(added_identifiers(diff))
        if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)
    ]
    leaks += [f"added string literal {body!r}" for body in sorted(added_literals(diff)) if body in text]
    leaks += [f"diff line {line!r}" for line in sorted(changed_lines(diff)) if line in text]
    return leaks


# --------------------------------------------------------------------------------------------------
# Where a task's human diff comes from


def _human_commits_diff(task: Task) -> str | None:
    record = HUMAN_COMMITS / f"{task.id}.json"
    if not record.is_file():
        return None
    diff = json.loads(record.read_text(encoding="utf-8")).get("diff_text")
    return diff if isinstance(diff, str) and diff.strip() else None


def _cached_clone_diff(task: Task, task_file: Path) -> str | None:
    """`git diff base human` from a clone that needs no network: already cached, or a local repo_url."""
    url = task.repo_url
    if url is None:
        return None
    path = Path(url.removeprefix("file://")).expanduser()
    is_local = (
        url.startswith("file://") or not re.match(r"^[a-z][a-z0-9+.-]*://|^git@", url)
    ) and path.exists()
    if not is_local:
        # `materialise` names a remote clone after its URL; use it only if it already holds both commits.
        clone = CACHE_REPOS / repos._slug(url)
        if not (clone / "HEAD").exists():
            return None
        if not all(
            has_object(commit + "^{commit}", clone) for commit in (task.base_commit, task.human_commit)
        ):
            return None
    CACHE_REPOS.mkdir(parents=True, exist_ok=True)
    try:
        git_dir = repos.materialise(task, task_file, CACHE_REPOS)
        return git("diff", task.base_commit, task.human_commit, cwd=git_dir).stdout
    except (repos.RepoError, GitError):
        return None


def human_diff(task: Task, task_file: Path) -> tuple[str | None, str]:
    """The task's human diff and where it came from, or None and why none is available."""
    if task.source is not None:
        patch = (task_file.parent / task.source.patch).resolve()
        return patch.read_text(encoding="utf-8"), str(patch)
    diff = _human_commits_diff(task)
    if diff is not None:
        return diff, str(HUMAN_COMMITS / f"{task.id}.json")
    diff = _cached_clone_diff(task, task_file)
    if diff is not None:
        return diff, f"git diff in {CACHE_REPOS}"
    return None, (
        f"no human diff available for {task.id}: {HUMAN_COMMITS / (task.id + '.json')} is absent and no"
        f" clone of {task.repo_url} holding both commits exists in {CACHE_REPOS} (tests never clone)"
    )


# --------------------------------------------------------------------------------------------------
# The catalog check

CATALOG = load_catalog([TASKS_ROOT])


@pytest.mark.parametrize("entry", CATALOG, ids=[entry.id for entry in CATALOG])
def test_description_does_not_leak_the_human_change(entry: LoadedTask | BrokenTaskFile) -> None:
    if isinstance(entry, BrokenTaskFile):
        pytest.fail(f"cannot check a broken task file: {entry.message}")
    task = entry.task
    diff, source = human_diff(task, entry.path)
    if diff is None:
        pytest.skip(source)
    problems = [f"description: {leak}" for leak in find_leaks(diff, task.description)]
    # Checked even for an empty description: the prompt's fixed text must not trip the detector either.
    prompt = render_prompt(task, PROMPT_WORKDIR)
    problems += [f"rendered prompt: {leak}" for leak in find_leaks(diff, prompt)]
    assert not problems, f"{entry.path} repeats the human change ({source}):\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# The detector itself

SAMPLE_DIFF = """\
diff --git a/engine/scheduler.py b/engine/scheduler.py
index 1111111..2222222 100644
--- a/engine/scheduler.py
+++ b/engine/scheduler.py
@@ -10,9 +10,14 @@ class Scheduler:
     def step(self, waiting):
-        for request in list(waiting):
-            if self.can_schedule(request):
-                self.running.append(request)
+        self._budget_cache: dict[int, int] = {}
+        ready = self.collect_ready_fast(waiting)
+        for request in ready:
+            self.running.append(request)
+        log.debug("scheduled via fast path")
         return self.running
+
+    def collect_ready_fast(self, waiting):
+        return [r for r in waiting if r.tokens <= self.budget]
"""


def test_sample_diff_is_parsed_into_sides() -> None:
    diff = split_diff(SAMPLE_DIFF)
    assert "        return self.running" in diff.context
    assert "        for request in list(waiting):" in diff.removed
    assert "    def collect_ready_fast(self, waiting):" in diff.added
    assert added_identifiers(diff) == {"_budget_cache", "collect_ready_fast"}
    assert added_literals(diff) == {"scheduled via fast path"}


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("The scheduler should call collect_ready_fast instead of looping.", "collect_ready_fast"),
        ("Cache budgets in `self._budget_cache` per step.", "_budget_cache"),
        ("It should log 'scheduled via fast path' once.", "scheduled via fast path"),
        ("Replace `for request in list(waiting):` with a filter.", "for request in list(waiting):"),
        (
            "Use `return [r for r in waiting if r.tokens <= self.budget]` in a helper.",
            "return [r for r in waiting if r.tokens <= self.budget]",
        ),
    ],
)
def test_detector_flags_a_leaking_description(description: str, expected: str) -> None:
    leaks = find_leaks(SAMPLE_DIFF, description)
    assert any(repr(expected) in leak for leak in leaks), leaks


def test_detector_passes_a_clean_description() -> None:
    clean = (
        "Under a long waiting queue the scheduler's step spends most of its time re-checking every "
        "waiting request against the budget (Scheduler.step, can_schedule); output throughput of the "
        "serving benchmark drops as the queue grows. A ready request is appended to self.running."
    )
    assert find_leaks(SAMPLE_DIFF, clean) == []
    assert find_leaks(SAMPLE_DIFF, "") == []


def test_generic_names_are_not_identifiers_worth_hiding() -> None:
    assert not is_distinctive("ready")  # short plain word
    assert not is_distinctive("throughput")  # long plain word
    assert not is_distinctive("enumerate")  # builtin
    assert is_distinctive("num_tokens")
    assert is_distinctive("FastQueue")
    assert is_distinctive("MAXBATCHSIZE")


def test_only_whole_words_match() -> None:
    assert find_leaks(SAMPLE_DIFF, "see collect_ready_fast_v2 and x_budget_cache") == []
