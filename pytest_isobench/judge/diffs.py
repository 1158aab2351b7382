"""A small unified-diff reader (git format): files, hunks, and which lines each hunk changes.

Only what the overlap judge needs: per file the old/new path, whether it is new, deleted or binary,
and per hunk the old/new start, git's function context from the ``@@`` line and the hunk's lines with
their old and new line numbers. It also rebuilds the patched text of a file from its base text, so
added code can be mapped to the function it lands in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")


@dataclass
class Line:
    """One hunk line: ``kind`` is ' ', '-' or '+'; ``old``/``new`` its number on each side (or None)."""

    kind: str
    text: str
    old: int | None
    new: int | None


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    context: str
    lines: list[Line] = field(default_factory=list)

    @property
    def old_range(self) -> tuple[int, int]:
        """First and last base line the hunk touches (an insertion: the line it follows)."""
        changed = [line.old for line in self.lines if line.kind == "-" and line.old is not None]
        if changed:
            return min(changed), max(changed)
        anchor = max(self.old_start, 1)
        return anchor, anchor


@dataclass
class FileDiff:
    old_path: str | None
    new_path: str | None
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "?"

    @property
    def is_new(self) -> bool:
        return self.old_path is None

    @property
    def is_deleted(self) -> bool:
        return self.new_path is None


def parse_diff(text: str) -> list[FileDiff]:
    """The files of a git diff in order; tolerant of missing headers and ``\\ No newline`` lines."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_no = new_no = old_left = new_left = 0
    for raw in text.splitlines():
        if raw.startswith("diff --git "):
            a, b = _git_header_paths(raw[len("diff --git ") :])
            current = FileDiff(old_path=a, new_path=b)
            files.append(current)
            hunk = None
            continue
        in_hunk = hunk is not None and (old_left > 0 or new_left > 0)
        starts_file = raw.startswith("--- ") and (current is None or bool(current.hunks))
        if not in_hunk and (starts_file or (current is None and raw.startswith("@@"))):
            current, hunk = FileDiff(old_path=None, new_path=None), None  # plain `diff -u` output
            files.append(current)
        if current is None:
            continue
        match = _HUNK.match(raw)
        if match:
            o, ol, n, nl, ctx = match.groups()
            hunk = Hunk(int(o), int(ol or 1), int(n), int(nl or 1), ctx.strip())
            current.hunks.append(hunk)
            old_no, new_no = int(o), int(n)
            old_left, new_left = hunk.old_len, hunk.new_len
            continue
        if raw.startswith("\\"):
            continue
        kind, body = (raw[:1] or " "), raw[1:]
        if hunk is None or kind not in " -+" or (old_left <= 0 and new_left <= 0):
            hunk = None  # the hunk's counts are used up: this is header text (or the next file's)
            _header_line(current, raw)
            continue
        if kind == "-":
            hunk.lines.append(Line("-", body, old_no, None))
            old_no, old_left = old_no + 1, old_left - 1
        elif kind == "+":
            hunk.lines.append(Line("+", body, None, new_no))
            new_no, new_left = new_no + 1, new_left - 1
        else:
            hunk.lines.append(Line(" ", body, old_no, new_no))
            old_no, new_no, old_left, new_left = old_no + 1, new_no + 1, old_left - 1, new_left - 1
    return [f for f in files if f.hunks or f.binary or f.old_path != f.new_path or f.is_new or f.is_deleted]


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_path(name: str) -> str:
    """A path as git writes it in a diff: C-quoted (``"a/caf\\303\\251.py"``) when it holds special or
    non-ASCII characters, else as is. Returns the real path (UTF-8, undecodable bytes kept as escapes)."""
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == "\\" and re.fullmatch(r"[0-3][0-7]{2}", body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif body[i] == "\\" and body[i + 1 : i + 2] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            out.extend(body[i].encode("utf-8", "surrogateescape"))
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _quoted_prefix(text: str) -> int:
    """Length of the C-quoted string ``text`` starts with (0 when it does not start with one)."""
    if not text.startswith('"'):
        return 0
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return 0


def _git_header_paths(rest: str) -> tuple[str, str]:
    """The two paths of ``diff --git a/X b/Y``, either of them possibly C-quoted or holding spaces."""
    if (end := _quoted_prefix(rest)) and rest[end : end + 1] == " ":
        a, b = rest[:end], rest[end + 1 :]
    elif rest.endswith('"') and ' "' in rest:
        a, _, b = rest.rpartition(' "')
        b = '"' + b
    elif len(rest) % 2 and rest[: len(rest) // 2][2:] == rest[len(rest) // 2 + 1 :][2:]:
        a, b = rest[: len(rest) // 2], rest[len(rest) // 2 + 1 :]  # the same name twice: may hold " b/"
    else:
        a, _, b = rest.partition(" b/")
        b = "b/" + b
    return unquote_path(a).removeprefix("a/"), unquote_path(b).removeprefix("b/")


def _file_header_name(raw: str) -> str:
    """The path of a ``---``/``+++`` line: C-quoted, or up to git's trailing tab."""
    rest = raw[4:]
    if end := _quoted_prefix(rest):
        return unquote_path(rest[:end])
    return rest.split("\t")[0].strip()


def _header_line(current: FileDiff, raw: str) -> None:
    if raw.startswith("--- "):
        name = _file_header_name(raw)
        current.old_path = None if name == "/dev/null" else name.removeprefix("a/")
    elif raw.startswith("+++ "):
        name = _file_header_name(raw)
        current.new_path = None if name == "/dev/null" else name.removeprefix("b/")
    elif raw.startswith("new file mode"):
        current.old_path = None
    elif raw.startswith("deleted file mode"):
        current.new_path = None
    elif raw.startswith("Binary files") or raw.startswith("GIT binary patch"):
        current.binary = True


def apply_hunks(old_text: str, diff: FileDiff) -> str | None:
    """The file after the patch, or None when the hunks do not fit ``old_text`` (another base)."""
    old = old_text.splitlines()
    out: list[str] = []
    cursor = 0  # index into old
    for hunk in diff.hunks:
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        if start < cursor or start > len(old):
            return None
        out.extend(old[cursor:start])
        cursor = start
        for line in hunk.lines:
            if line.kind in " -":
                if cursor >= len(old) or old[cursor] != line.text:
                    return None
                cursor += 1
            if line.kind in " +":
                out.append(line.text)
    out.extend(old[cursor:])
    return "\n".join(out) + "\n"


def added_text(diff: FileDiff) -> str:
    """A new file's content, straight from its '+' lines."""
    return "\n".join(line.text for hunk in diff.hunks for line in hunk.lines if line.kind == "+") + "\n"
