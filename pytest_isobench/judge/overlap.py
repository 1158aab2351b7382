"""``overlap``: an offline, deterministic judge that compares *where* the two patches change code.

A heuristic, not a reviewer: it cannot tell a real optimisation from a cosmetic edit in the same
function, and it never judges the approach (``approach_comparison`` stays None). It is free, needs
no network, and makes a useful second opinion or a baseline for the model judges.

How it works:

1. Each patch is split into *changed units*. For a Python file a unit is the innermost function or
   class whose lines a hunk removes or adds (``Class.method``), or ``<module>`` for top-level code.
   Blank and comment-only lines are ignored; a file whose only real change is its imports counts
   as ``<module>``. For any other file a unit is the base-file line range of a hunk; a new, deleted
   or binary file is one ``<file>`` unit.
2. Mapping lines to functions: with ``base_tree`` (the task's base checkout) removed lines are
   located with ``ast`` in the base file, and added lines in the patched text (the base file with the
   hunks applied; a new file's text comes straight from the patch). Without it, or when the base file
   does not parse or the hunks do not fit it, the diff alone is used: the enclosing ``def``/``class``
   from the ``@@ ... @@ def name(`` context that git writes, then the ``def``/``class`` lines inside
   the hunk, nested by indentation. The diff-only mode may name ``forward`` where the AST mode
   names ``Layer.forward``, so names also match when one is a dotted suffix of the other.
3. Decision: the agent changed nothing but blanks/comments → ``no_optimization``; every unit on each
   side matches one on the other (same path, same name, or intersecting line ranges) →
   ``same_target``; some unit matches, or both touch a common file → ``related_target``; otherwise
   ``different_target``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .base import BottleneckCategory, BottleneckTarget, JudgeContext, SoftVerdict
from .diffs import FileDiff, Hunk, added_text, apply_hunks, parse_diff

OVERLAP_VERSION = 1
_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")
_IMPORT = re.compile(r"^(?:import\s|from\s+\S+\s+import\s)")
_PY_SUFFIXES = (".py", ".pyi")
_SHOWN = 8

Scope = tuple[int, int, str]  # first line, last line, qualified name


@dataclass(frozen=True)
class Unit:
    """A changed piece of one file: a named scope, or a line span for non-Python files."""

    path: str
    name: str | None = None
    span: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        if self.span is not None:
            return f"{self.path}:{self.span[0]}-{self.span[1]}"
        return f"{self.path}:{self.name}" if self.name else self.path

    def matches(self, other: Unit) -> bool:
        if self.path != other.path:
            return False
        if "<file>" in (self.name, other.name):
            return True
        if self.span is not None and other.span is not None:
            return self.span[0] <= other.span[1] and other.span[0] <= self.span[1]
        if self.name is None or other.name is None:
            return False
        a, b = sorted((self.name, other.name), key=len)
        return a == b or b.endswith("." + a)


def changed_units(patch: str, base_tree: Path | None = None) -> tuple[set[Unit], str]:
    """The units a patch changes, and the mapping mode used (``ast``, ``diff`` or ``ast+diff``)."""
    units: set[Unit] = set()
    modes: set[str] = set()
    for diff in parse_diff(patch):
        if diff.path.endswith(_PY_SUFFIXES) and not diff.binary:
            found, mode = _python_units(diff, base_tree)
            units |= found
            modes.add(mode)
        else:
            units |= _other_units(diff)
    mode = "+".join(sorted(modes)) if modes else "lines"
    return units, mode


def _other_units(diff: FileDiff) -> set[Unit]:
    if diff.binary or diff.is_new or diff.is_deleted or not diff.hunks:
        return {Unit(diff.path, "<file>")}
    return {
        Unit(diff.path, span=hunk.old_range)
        for hunk in diff.hunks
        if any(line.kind != " " and line.text.strip() for line in hunk.lines)
    }


def _python_units(diff: FileDiff, base_tree: Path | None) -> tuple[set[Unit], str]:
    old_text = new_text = None
    if diff.is_new:
        new_text = added_text(diff)
    elif base_tree is not None and diff.old_path is not None:
        try:
            old_text = (base_tree / diff.old_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            old_text = None
        if old_text is not None and not diff.is_deleted:
            new_text = apply_hunks(old_text, diff)
    old_scopes, new_scopes = _scopes(old_text), _scopes(new_text)
    ast_mode = (old_scopes is not None or diff.is_new) and (new_scopes is not None or diff.is_deleted)
    names: set[str] = set()
    imports = False
    for hunk in diff.hunks:
        fallback = _diff_scopes(hunk)
        for index, line in enumerate(hunk.lines):
            text = line.text.strip()
            if line.kind == " " or not text or text.startswith("#"):
                continue
            scopes, number = (old_scopes, line.old) if line.kind == "-" else (new_scopes, line.new)
            if ast_mode and scopes is not None and number is not None:
                name = _innermost(scopes, number)
            else:
                name = fallback[index]
            if name is None and _IMPORT.match(text):
                imports = True
            else:
                names.add(name or "<module>")
    if not names and imports:
        names.add("<module>")
    return {Unit(diff.path, name) for name in names}, "ast" if ast_mode else "diff"


def _scopes(source: str | None) -> list[Scope] | None:
    """Every function and class with its line span (decorators included), or None if unparsable."""
    if source is None:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found: list[Scope] = []

    def visit(nodes: Iterable[ast.stmt], prefix: str) -> None:
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                qual = f"{prefix}{node.name}"
                found.append((start, node.end_lineno or node.lineno, qual))
                visit(node.body, qual + ".")
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child], prefix)

    visit(tree.body, "")
    return found


def _innermost(scopes: list[Scope], line: int) -> str | None:
    inside = [s for s in scopes if s[0] <= line <= s[1]]
    return min(inside, key=lambda s: s[1] - s[0])[2] if inside else None


def _diff_scopes(hunk: Hunk) -> list[str | None]:
    """Diff-only mapping: the enclosing scope of each hunk line, from the ``@@`` context and the
    ``def``/``class`` lines of the hunk, nested by indentation; old and new side tracked apart."""
    start: list[tuple[int, str]] = []
    header = _DEF.match(hunk.context)
    if header:
        start = [(len(header.group(1).expandtabs()), header.group(2))]
    stacks = {"-": list(start), "+": list(start)}
    names: list[str | None] = []
    for line in hunk.lines:
        sides = ("-", "+") if line.kind == " " else (line.kind,)
        for side in sides:
            _step(stacks[side], line.text)
        stack = stacks[sides[0]]
        names.append(".".join(name for _, name in stack) or None)
    return names


def _step(stack: list[tuple[int, str]], text: str) -> None:
    if not text.strip() or text.lstrip().startswith("#"):
        return
    indent = len(text) - len(text.lstrip())
    indent = len(text[:indent].expandtabs())
    while stack and stack[-1][0] >= indent:
        stack.pop()
    match = _DEF.match(text)
    if match:
        stack.append((indent, match.group(2)))


def compare_units(human: set[Unit], agent: set[Unit]) -> tuple[BottleneckCategory, str]:
    """(category, why) for two sets of changed units; see the module docstring."""
    if not agent:
        return (
            "no_optimization",
            "the agent's patch changes no code (empty, or only blank lines and comments)",
        )
    agent_ok = all(any(a.matches(h) for h in human) for a in agent)
    human_ok = all(any(h.matches(a) for a in agent) for h in human)
    shared = sorted({h.label for h in human if any(h.matches(a) for a in agent)})
    files = sorted({u.path for u in human} & {u.path for u in agent})
    counts = (
        f"human {len(human)} unit(s) in {len({u.path for u in human})} file(s), agent {len(agent)} unit(s)"
    )
    if agent_ok and human_ok:
        return "same_target", f"both patches change the same units ({counts})"
    if shared:
        return (
            "related_target",
            f"{len(shared)} human unit(s) also changed by the agent ({counts}): {_show(shared)}",
        )
    if files:
        return "related_target", f"no unit in common, but the same file(s): {_show(files)} ({counts})"
    return "different_target", f"no file in common ({counts})"


def _show(items: list[str]) -> str:
    more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


class OverlapJudge:
    """The ``overlap`` judge; cheap and deterministic, so never cached."""

    name = "overlap"
    cacheable = False
    prompt_version = OVERLAP_VERSION

    @classmethod
    def create(cls, arg: str | None) -> OverlapJudge:
        if arg:
            raise ValueError(f"the overlap judge takes no argument (got {arg!r})")
        return cls()

    def judge(self, ctx: JudgeContext) -> SoftVerdict:
        base = ctx.input.base_tree
        human, human_mode = changed_units(ctx.input.human_patch, base)
        if not human:
            return SoftVerdict.failed(self.name, "the human patch changes no code the overlap judge can see")
        agent, agent_mode = changed_units(ctx.input.agent_patch, base)
        category, why = compare_units(human, agent)
        target = BottleneckTarget(
            category=category,
            human_target=_show(sorted(u.label for u in human)),
            agent_target=_show(sorted(u.label for u in agent)) or "(nothing)",
            rationale=f"{why}; lines mapped by {human_mode} (human) / {agent_mode} (agent)",
        )
        return SoftVerdict(judge=self.name, bottleneck_target=target, prompt_version=self.prompt_version)
