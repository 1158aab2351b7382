"""Task files: pydantic models and catalog loading (no pytest import).

One TOML file per task. A file that cannot be read or validated becomes a ``BrokenTaskFile`` that
carries a message naming the file, the dotted field path and the problem, so one bad file errors one
item and never the whole run.
"""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

HEX40 = r"^[0-9a-f]{40}$"
MARKER_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Marks pytest itself owns; a tag with one of these names would change how the item runs.
RESERVED_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "tryfirst", "trylast"}
)
BENCHMARK_FIELDS_WITH_ORIGIN = ("command", "server", "metric", "model", "gpus")
# Metric name fragments that mean "lower is better"; everything else (throughputs) is higher-better.
LOWER_IS_BETTER = (
    "ttft",
    "tpot",
    "itl",
    "e2el",
    "e2e_latency",
    "latency",
    "duration",
    "elapsed",
    "cost_time",
    "_ms",
)


class Strict(BaseModel):
    """Base for everything read from a task file: unknown keys are errors, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(Strict):
    """Where a benchmark value came from: the ISO-Bench record, or written by us (with why)."""

    source: Literal["archive", "curated"]
    reason: str = ""

    @model_validator(mode="after")
    def _curated_needs_reason(self) -> Origin:
        if self.source == "curated" and not self.reason.strip():
            raise ValueError("a curated value needs a one-line `reason`")
        return self


class Benchmark(Strict):
    """How the task's own benchmark is run and which figure decides the verdict."""

    mode: Literal["serving", "throughput", "latency", "custom"]
    command: str | None = None
    server: str | None = None
    ready_url: str = "http://127.0.0.1:{port}/health"
    metric: str | None = None
    direction: Literal["lower", "higher"] | None = None
    model: str | None = None
    gpus: Annotated[int, Field(ge=0)] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    server_timeout_s: Annotated[float, Field(gt=0)] = 1200.0
    origin: dict[str, Origin] = Field(default_factory=dict)

    @field_validator("command", "server", "metric", "model")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; leave the key out instead")
        return value

    @model_validator(mode="after")
    def _origins_name_known_values(self) -> Benchmark:
        unknown = sorted(set(self.origin) - set(BENCHMARK_FIELDS_WITH_ORIGIN))
        if unknown:
            raise ValueError(
                f"origin has entries for {unknown}; allowed: {list(BENCHMARK_FIELDS_WITH_ORIGIN)}"
            )
        return self

    @property
    def missing_origins(self) -> list[str]:
        """Values set without an ``origin`` entry: optional for a user's own task, required for the
        bundled catalog (where each value must say whether it came from the ISO-Bench record)."""
        return [
            name
            for name in BENCHMARK_FIELDS_WITH_ORIGIN
            if getattr(self, name) is not None and name not in self.origin
        ]

    @property
    def lower_is_better(self) -> bool:
        """Direction of the primary metric: declared, or inferred from its name."""
        if self.direction is not None:
            return self.direction == "lower"
        return metric_lower_is_better(self.metric or "")


def metric_lower_is_better(metric: str) -> bool:
    """True for latency-like metric names (TTFT, TPOT, ITL, latency), False for throughputs."""
    name = metric.lower()
    if "throughput" in name or "per_second" in name:
        return False
    return any(fragment in name for fragment in LOWER_IS_BETTER)


class LmEvalCheck(Strict):
    """The paper's correctness check: lm-eval accuracy within a tolerance of the human variant, plus
    a paired comparison of the items (exact McNemar test)."""

    kind: Literal["lm_eval"]
    task: str = "gsm8k"
    limit: Annotated[int, Field(gt=0)] = 100
    tolerance: Annotated[float, Field(ge=0)] = 1.0
    num_fewshot: Annotated[int, Field(ge=0)] | None = None
    # lm-eval's client for the server's OpenAI-compatible endpoint.
    model_type: Literal["local-completions", "local-chat-completions"] = "local-completions"
    # The result key of the accuracy, as lm-eval's results file names it.
    metric: str = "exact_match,strict-match"
    # Significance level of the one-sided "agent worse" McNemar test.
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    note: str = ""


class GreedyCheck(Strict):
    """Greedy-output equivalence: fixed prompts at temperature 0 to the human and the agent server;
    a divergence passes only when each side's token is in the other's top-k at the first one."""

    kind: Literal["greedy"]
    prompts: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None
    max_tokens: Annotated[int, Field(gt=0, le=4096)] = 32
    top_k: Annotated[int, Field(ge=1, le=20)] = 5
    model: str | None = None  # the served model's name; default: the first the server lists
    timeout_s: Annotated[float, Field(gt=0)] = 600.0
    note: str = ""


class OutputCheck(Strict):
    """Generation equivalence: a command whose output must be identical on human and agent trees."""

    kind: Literal["output"]
    command: str
    timeout_s: Annotated[float, Field(gt=0)] = 600.0
    note: str = ""


class PluginCheck(BaseModel):
    """A check of a kind a conftest.py registers (``pytest_isobench_correctness_checks``); its own
    fields are validated by that check when it runs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


BUILTIN_CHECK_KINDS = ("lm_eval", "greedy", "output")


def _check_kind(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in BUILTIN_CHECK_KINDS else "plugin"


Correctness = Annotated[
    Annotated[LmEvalCheck, Tag("lm_eval")]
    | Annotated[GreedyCheck, Tag("greedy")]
    | Annotated[OutputCheck, Tag("output")]
    | Annotated[PluginCheck, Tag("plugin")],
    Discriminator(_check_kind),
]


class Source(Strict):
    """A task repository kept in source form: a base tree plus the human change as a diff."""

    tree: str
    patch: str


class DatasetFile(Strict):
    """A file a benchmark reads: ``file`` of the Hugging Face dataset ``repo``, kept as
    ``{dataset_dir}/<file name>`` in the dataset cache (``python -m pytest_isobench prefetch``)."""

    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    file: str
    revision: Annotated[str, Field(pattern=r"^[\w.-]+$")] = "main"

    @field_validator("file")
    @classmethod
    def _relative_file(cls, value: str) -> str:
        parts = value.split("/")
        if not value.strip() or value.startswith("/") or ".." in parts or "" in parts:
            raise ValueError(f"file {value!r} must be a path inside the dataset repository, e.g. 'data.json'")
        return value

    @property
    def name(self) -> str:
        """The file's name in the dataset cache."""
        return self.file.rsplit("/", 1)[-1]


class Inputs(Strict):
    """What a task needs on disk before it can run offline: dataset files and model repositories."""

    datasets: list[DatasetFile] = Field(default_factory=list)
    models: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_names(self) -> Inputs:
        names = [d.name for d in self.datasets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two datasets share the cache file name {twice[0]!r}")
        return self


class Task(Strict):
    """One ISO-Bench task: a merged performance change, its parent, and how to measure it."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    repo: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    repo_url: str | None = None
    source: Source | None = None
    import_root: str = "."
    pr_url: str | None = None
    title: str
    base_commit: Annotated[str, Field(pattern=HEX40)]
    human_commit: Annotated[str, Field(pattern=HEX40)]
    description: str = ""
    target_files: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    status: Literal["ready", "incomplete"]
    status_reason: str = ""
    notes: str = ""
    benchmark: Benchmark
    inputs: Inputs = Field(default_factory=Inputs)
    benchmark_files: list[str] | None = None
    # One ``[correctness]`` table, or several as ``[[correctness]]`` (e.g. greedy and lm_eval).
    correctness: list[Correctness] = Field(default_factory=list)

    @field_validator("correctness", mode="before")
    @classmethod
    def _one_table_is_a_list_of_one(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value

    @field_validator("correctness")
    @classmethod
    def _one_check_per_kind(cls, checks: list[Correctness]) -> list[Correctness]:
        kinds = [check.kind for check in checks]
        twice = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if twice:
            raise ValueError(f"two checks of kind {twice[0]!r}; declare each kind once")
        return checks

    @field_validator("tags")
    @classmethod
    def _tags_are_marker_names(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not MARKER_NAME.match(tag):
                raise ValueError(f"tag {tag!r} is not a valid marker name (use [a-z_][a-z0-9_]*)")
            if tag in RESERVED_MARKERS:
                raise ValueError(f"tag {tag!r} is reserved by pytest; choose another name")
        return tags

    @field_validator("benchmark_files")
    @classmethod
    def _benchmark_files_inside_the_tree(cls, globs: list[str] | None) -> list[str] | None:
        for glob in globs or []:
            parts = glob.split("/")
            if not glob.strip() or glob.startswith("/") or ".." in parts or "\\" in glob:
                raise ValueError(
                    f"benchmark_files entry {glob!r} must be a glob relative to the tree's root,"
                    " e.g. 'benchmarks/**' or 'python/sglang/bench_*.py'"
                )
        return globs

    @field_validator("import_root")
    @classmethod
    def _import_root_inside_the_tree(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or ".." in parts or not value.strip():
            raise ValueError(f"import_root {value!r} must be a folder inside the tree, e.g. '.' or 'python'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if (self.repo_url is None) == (self.source is None):
            raise ValueError("give exactly one of `repo_url` (a git repository) or `[source]` (tree + patch)")
        if self.base_commit == self.human_commit:
            raise ValueError("base_commit and human_commit are the same commit")
        if self.status == "incomplete" and not self.status_reason.strip():
            raise ValueError("an incomplete task needs a `status_reason` saying what is missing")
        if self.status == "ready":
            missing = [n for n in ("command", "metric", "gpus") if getattr(self.benchmark, n) is None]
            if missing:
                raise ValueError(
                    f"status is 'ready' but benchmark.{missing[0]} is missing "
                    f"(missing: {missing}); fill it in or set status = 'incomplete' with a status_reason"
                )
        uses_datasets = any(
            "{dataset_dir}" in (t or "") for t in (self.benchmark.command, self.benchmark.server)
        )
        if uses_datasets and not self.inputs.datasets:
            raise ValueError(
                "the benchmark uses {dataset_dir} but [inputs] declares no dataset: add"
                ' datasets = [{repo = "org/name", file = "data.json"}] under [inputs]'
            )
        if any(check.kind == "greedy" for check in self.correctness) and self.benchmark.server is None:
            raise ValueError(
                "correctness: a greedy check asks the benchmark's server, but benchmark.server is not set;"
                " use an output check (a command) instead"
            )
        if self.benchmark.server is not None and self.benchmark.command is None:
            raise ValueError("benchmark.server is set but benchmark.command (the client) is not")
        return self

    @property
    def marks(self) -> list[str]:
        """Marker names for this task: repo, benchmark mode, multi_gpu, then the file's tags."""
        names = [self.repo, self.benchmark.mode]
        if (self.benchmark.gpus or 0) > 1:
            names.append("multi_gpu")
        names.extend(self.tags)
        return list(dict.fromkeys(names))


def curation_gaps(task: Task) -> list[str]:
    """What a valid task still lacks before it is fully curated: ``field: problem`` lines."""
    gaps = []
    if task.status != "ready":
        gaps.append(f"status: incomplete: {task.status_reason}")
    if not task.description.strip():
        gaps.append("description: empty (write the agent-facing bottleneck description)")
    if not task.correctness:
        gaps.append("correctness: missing (say how to check that answers stay the same)")
    if missing := task.benchmark.missing_origins:
        gaps.append(
            f"benchmark.origin: no origin recorded for {missing} (add e.g. origin.{missing[0]} ="
            ' {source = "archive"} or {source = "curated", reason = "..."})'
        )
    return gaps


@dataclass(frozen=True)
class LoadedTask:
    """A valid task and the file it came from."""

    task: Task
    path: Path

    @property
    def id(self) -> str:
        return self.task.id


@dataclass(frozen=True)
class BrokenTaskFile:
    """A task file that could not be used; ``message`` says where and what, and how to fix it."""

    path: Path
    message: str
    id: str


CatalogEntry = LoadedTask | BrokenTaskFile


def explain(path: Path, error: ValidationError) -> str:
    """Render a validation error as `file: field.path: problem` lines."""
    rows = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "<file>"
        rows.append(f"{path}: {loc}: {item['msg']}")
    return "\n".join(rows)


def load_task_file(path: Path) -> CatalogEntry:
    """Read and validate one task file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return BrokenTaskFile(path, f"{path}: cannot read: {exc.strerror or exc}", path.stem)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return BrokenTaskFile(path, f"{path}: invalid TOML: {exc}", path.stem)
    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        return BrokenTaskFile(path, explain(path, exc), path.stem)
    if task.id != path.stem:
        return BrokenTaskFile(
            path,
            f"{path}: id: {task.id!r} does not match the file name; name the file {task.id}.toml",
            path.stem,
        )
    return LoadedTask(task, path)


def task_files(root: Path) -> list[Path]:
    """Task files under a root: ``*.toml`` directly in it or in its immediate subfolders, sorted.

    Deeper folders are left alone, so a smoke task's source tree can hold TOML files of its own.
    A root that is a file is that one task file.
    """
    if root.is_file():
        return [root]
    found = [p for p in (*root.glob("*.toml"), *root.glob("*/*.toml")) if p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def no_tasks_message(root: Path) -> str:
    """Why a task root yields nothing, and where task files are looked for."""
    return (
        f"{root}: no task files here (task files are *.toml directly in the folder or in its"
        " immediate subfolders); check the path"
    )


def empty_roots(roots: Sequence[Path]) -> list[Path]:
    """The roots that hold no task file (an empty or mistyped folder)."""
    return [root for root in roots if not task_files(root)] if roots else []


def source_problems(entry: LoadedTask) -> list[str]:
    """``file: source.field: problem`` for a source task whose tree or patch is not where it says."""
    source = entry.task.source
    if source is None:
        return []
    problems = []
    tree = (entry.path.parent / source.tree).resolve()
    patch = (entry.path.parent / source.patch).resolve()
    if not tree.is_dir():
        problems.append(f"{entry.path}: source.tree: {tree} is not a directory")
    if not patch.is_file():
        problems.append(f"{entry.path}: source.patch: {patch} is not a file")
    return problems


def load_catalog(roots: Sequence[Path]) -> list[CatalogEntry]:
    """Every task under the roots, in a deterministic order, duplicates turned into errors."""
    entries = [load_task_file(path) for root in roots for path in task_files(root)]
    return _mark_duplicates(entries)


def _mark_duplicates(entries: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    entries = list(entries)
    by_id: dict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        if isinstance(entry, LoadedTask):
            by_id[entry.id].append(index)
    for task_id, indexes in by_id.items():
        if len(indexes) < 2:
            continue
        paths = [str(entries[i].path) for i in indexes]
        for i in indexes:
            entry = entries[i]
            message = f"{entry.path}: id: duplicate task id {task_id!r}, used by: {', '.join(paths)}"
            entries[i] = BrokenTaskFile(entry.path, message, f"{task_id}@{entry.path.parent.name}")
    return entries


def tasks_only(entries: Iterable[CatalogEntry]) -> list[Task]:
    """The valid tasks of a catalog."""
    return [entry.task for entry in entries if isinstance(entry, LoadedTask)]
