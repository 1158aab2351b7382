"""The benchmark belongs to the harness: every variant runs the benchmark files of one reference tree.

A task's benchmark files are the globs of its ``benchmark_files`` (default per repository, see
``DEFAULT_BENCHMARK_FILES``), the scripts and modules its benchmark ``command`` names, and new
top-level modules that would shadow what a benchmark imports (a ``json.py``, ``sitecustomize.py``
or ``numpy/`` added at the tree's root or import root). The reference tree is the task's base
tree: the benchmark the agent was shown, and the one the paper's runs used for every variant.
Whatever a patch (the agent's, or the human change) did to these files, ``restore`` puts the
reference's versions back into the variant tree before it is measured, and ``touched`` names the
paths a patch changes there, so the outcome can say so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..sandbox.gitutil import GitError, git_bytes
from ..tasks import Task

# Per repository, when a task declares no ``benchmark_files``: the benchmark scripts and the
# modules of the package that implement its benchmark clients.
DEFAULT_BENCHMARK_FILES: dict[str, tuple[str, ...]] = {
    "vllm": ("benchmarks/**", "vllm/benchmarks/**", "vllm/entrypoints/cli/benchmark/**"),
    "sglang": ("benchmark/**", "python/sglang/bench_*.py", "python/sglang/benchmark/**"),
    "smoke": ("benchmarks/**",),
}
# Top-level names a benchmark process imports besides the package under test: a new module of
# one of these names at the tree's root or import root would replace the real one.
SHADOWED_PACKAGES = frozenset(
    {
        "sitecustomize",
        "usercustomize",
        "aiohttp",
        "datasets",
        "huggingface_hub",
        "numpy",
        "openai",
        "pandas",
        "PIL",
        "requests",
        "safetensors",
        "tokenizers",
        "torch",
        "tqdm",
        "transformers",
        "triton",
        *sys.stdlib_module_names,
    }
)
_MODULE_SUFFIXES = (".py", ".pyc", ".so")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``*`` and ``?`` stay within one folder, ``**`` spans folders, and
    ``dir/**`` also matches ``dir`` itself (a patch may replace the folder with a file or link)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def command_files(task: Task) -> list[str]:
    """Globs for the scripts and ``-m`` modules the benchmark command (the client) runs."""
    command = task.benchmark.command or ""
    try:
        words = shlex.split(command, comments=False)
    except ValueError:
        words = command.split()
    found: list[str] = []
    for index, word in enumerate(words):
        if word.endswith(".py") and not word.startswith(("/", "-", "~")) and "{" not in word:
            path = os.path.normpath(word)
            if not path.startswith(".."):
                found.append(path)
        if word == "-m" and index + 1 < len(words):
            module = words[index + 1].replace(".", "/")
            if re.fullmatch(r"[A-Za-z_][\w/]*", module):
                root = os.path.normpath(os.path.join(task.import_root, module))
                found += [f"{root}.py", f"{root}/**"]
    return found


def benchmark_patterns(task: Task) -> list[str]:
    """The task's benchmark-file globs: declared (else the repository's default) plus the command's."""
    declared = task.benchmark_files
    base = list(declared) if declared is not None else list(DEFAULT_BENCHMARK_FILES.get(task.repo, ()))
    return list(dict.fromkeys([*base, *command_files(task)]))


@dataclass(frozen=True)
class Entry:
    """A file of the reference tree: git mode (``100644``, ``100755``, ``120000``) and blob id."""

    mode: str
    blob: str


class BenchmarkFiles:
    """Which paths of a tree are benchmark files, and the reference tree's versions of them."""

    def __init__(self, task: Task, repo: Path) -> None:
        self.task, self.repo = task, repo
        self.patterns = benchmark_patterns(task)
        self._regexes = [glob_regex(p) for p in self.patterns]
        self.roots = list(dict.fromkeys([".", os.path.normpath(task.import_root)]))

    @cached_property
    def listing(self) -> dict[str, Entry]:
        """Every file of the reference (base) tree."""
        raw = git_bytes(
            "--git-dir", str(self.repo), "ls-tree", "-r", "-z", "--full-tree", self.task.base_commit
        )
        entries = {}
        for record in raw.split(b"\0"):
            if not record:
                continue
            meta, path = record.split(b"\t", 1)
            mode, kind, blob = meta.decode().split()
            if kind == "blob":
                entries[path.decode("utf-8", "surrogateescape")] = Entry(mode, blob)
        return entries

    @cached_property
    def _top_names(self) -> dict[str, set[str]]:
        """Per root, the names of its entries in the reference tree."""
        names: dict[str, set[str]] = {root: set() for root in self.roots}
        for path in self.listing:
            for root, rest in self._under_roots(path):
                names[root].add(rest.split("/", 1)[0])
        return names

    def _under_roots(self, path: str) -> Iterable[tuple[str, str]]:
        for root in self.roots:
            if root == ".":
                yield root, path
            elif path.startswith(root + "/"):
                yield root, path[len(root) + 1 :]

    def is_benchmark_file(self, path: str) -> bool:
        """True for a path the benchmark owns (a glob match, or a new top-level shadowing module)."""
        path = path.strip("/")
        if any(regex.match(path) for regex in self._regexes):
            return True
        for root, rest in self._under_roots(path):
            first, _, below = rest.partition("/")
            name = first if below else _module_name(first)
            if name in SHADOWED_PACKAGES and first not in self._top_names[root]:
                return True
        return False

    @cached_property
    def reference(self) -> dict[str, Entry]:
        """The benchmark files of the reference tree."""
        return {path: entry for path, entry in self.listing.items() if self.is_benchmark_file(path)}

    def touched(self, patch: str) -> list[str]:
        """The benchmark files a patch changes (the paths as ``git apply`` itself reads them)."""
        if not patch.strip():
            return []
        paths = patch_paths(self.repo, patch)
        return sorted(p for p in paths if self.is_benchmark_file(p))

    def restore(self, tree: Path) -> list[str]:
        """Make the tree's benchmark files the reference's; the paths that differed, sorted."""
        changed: set[str] = set()
        present: set[str] = set()
        for rel, full in _entries(tree):
            if not self.is_benchmark_file(rel):
                continue
            entry = self.reference.get(rel)
            if entry is not None and _same(full, entry):
                present.add(rel)
                continue
            changed.add(rel)
            _remove(full)
        missing = [p for p in self.reference if p not in present]
        blobs = _blobs(self.repo, sorted({self.reference[p].blob for p in missing}))
        for rel in missing:
            entry = self.reference[rel]
            _write(tree, rel, entry, blobs[entry.blob])
            changed.add(rel)
        return sorted(changed)


def _module_name(name: str) -> str:
    """``json.py`` -> ``json``; ``x.cpython-311-x86_64-linux-gnu.so`` -> ``x``; other files -> ''."""
    if name.endswith(_MODULE_SUFFIXES):
        return name.split(".", 1)[0]
    return ""


def _entries(tree: Path) -> Iterable[tuple[str, Path]]:
    """(relative path, path) of every file, link and folder under ``tree``, links not followed."""
    for folder, dirs, files in os.walk(tree):
        base = Path(folder)
        rel_base = base.relative_to(tree).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        for name in [*dirs, *files]:
            full = base / name
            if name in dirs and not full.is_symlink():
                if prefix + name == ".git":
                    dirs.remove(name)
                continue
            yield prefix + name, full


def _git_blob_id(data: bytes, length: int) -> str:
    header = f"blob {len(data)}\0".encode()
    digest = hashlib.sha256 if length == 64 else hashlib.sha1
    return digest(header + data).hexdigest()


def _same(full: Path, entry: Entry) -> bool:
    """Whether a file (or link) of a tree is exactly the reference's entry."""
    try:
        info = full.lstat()
        if entry.mode == "120000":
            if not stat.S_ISLNK(info.st_mode):
                return False
            data = os.readlink(full).encode("utf-8", "surrogateescape")
        else:
            if not stat.S_ISREG(info.st_mode):
                return False
            if bool(info.st_mode & stat.S_IXUSR) != (entry.mode == "100755"):
                return False
            data = full.read_bytes()
    except OSError:
        return False
    return _git_blob_id(data, len(entry.blob)) == entry.blob


def _remove(full: Path) -> None:
    if full.is_dir() and not full.is_symlink():
        shutil.rmtree(full)
    else:
        full.unlink(missing_ok=True)


def _write(tree: Path, rel: str, entry: Entry, data: bytes) -> None:
    """Write one reference file; folders on its way that are links or files become folders."""
    parent = tree
    for part in rel.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            parent.unlink()
        parent.mkdir(exist_ok=True)
    target = parent / rel.rsplit("/", 1)[-1]
    if target.is_dir() and not target.is_symlink():  # the patch made a folder of it
        shutil.rmtree(target)
    if entry.mode == "120000":
        os.symlink(data.decode("utf-8", "surrogateescape"), target)
    else:
        target.write_bytes(data)
        target.chmod(0o755 if entry.mode == "100755" else 0o644)


def _blobs(repo: Path, ids: list[str]) -> dict[str, bytes]:
    """The contents of blobs of the harness's repository, read in one ``git cat-file --batch``."""
    if not ids:
        return {}
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "--batch"],
        input="".join(f"{blob}\n" for blob in ids).encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise GitError(f"`git cat-file --batch` in {repo} failed: {result.stderr.decode().strip()}")
    out, pos, found = result.stdout, 0, {}
    for blob in ids:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise GitError(f"`git cat-file` in {repo}: no blob {blob}")
        size = int(header[2])
        found[blob] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return found


def patch_paths(repo: Path, patch: str) -> list[str]:
    """Every path a patch touches, as ``git apply`` reads it (old and new names)."""
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "apply", "--numstat", "-z", "-"],
        input=patch.encode("utf-8", "surrogateescape"),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        return _header_paths(patch)  # unreadable for git: the verdict will say patch_does_not_apply
    paths: list[str] = []
    fields = result.stdout.split(b"\0")
    index = 0
    while index < len(fields):
        record = fields[index]
        index += 1
        if not record:
            continue
        parts = record.split(b"\t", 2)
        if len(parts) == 3 and parts[2]:
            paths.append(parts[2].decode("utf-8", "surrogateescape"))
        elif index + 1 < len(fields):  # a rename or copy: "added\tremoved\t\0old\0new\0"
            paths += [f.decode("utf-8", "surrogateescape") for f in fields[index : index + 2]]
            index += 2
    return paths


def _header_paths(patch: str) -> list[str]:
    paths = []
    for line in patch.splitlines():
        if line.startswith(("--- ", "+++ ")):
            name = line[4:].split("\t", 1)[0].strip()
            if name != "/dev/null":
                paths.append(name.split("/", 1)[1] if name[:2] in ("a/", "b/") else name)
    return paths
