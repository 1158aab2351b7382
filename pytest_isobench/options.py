"""Command-line and ini options, resolved once into a frozen ``Settings`` (CLI > env > ini > default)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

AGENT_HELP = (
    "agent to evaluate: human, noop, replay:PATH, command:SHELL, or one a conftest.py registers"
    " (default: none; every task then skips saying how to choose one)"
)
TASKS_HELP = (
    "task file or task root (repeatable; env: ISOBENCH_TASKS, several joined by ':'; ini: isobench_tasks);"
    " default: <rootdir>/tasks"
)
BACKEND_HELP = (
    "sandbox the tasks run in: local (default; trusted agents only), docker, or one a conftest.py adds"
)
ROUNDS_HELP = (
    "measured rounds per variant after the warm-up: auto (default: adaptive, between the min and max"
    " rounds, until the agent/human interval is clear of the band edges) or a fixed number"
)
MIN_ROUNDS_HELP = "adaptive rounds: the fewest rounds of agent and human (default 5)"
MAX_ROUNDS_HELP = "adaptive rounds: the most rounds of agent and human (default 20)"
WARMUP_HELP = "warm-up runs per variant before the measured rounds (default 1)"
BUDGET_HELP = (
    "agent time budget in minutes; the agent and all its children are killed when it runs out (default 120)"
)
RUNS_DIR_HELP = "where runs write their artifacts, one folder per run id (default: <rootdir>/.isobench/runs)"
CACHE_DIR_HELP = (
    "content-addressed cache: task repositories, baseline/human measurements, judge verdicts"
    " (default: <rootdir>/.isobench/cache)"
)
RUN_ID_HELP = (
    "reuse a run id: finished stages of that run are kept, the rest resumes (default: a new id,"
    " date-time-random)"
)
REMEASURE_HELP = (
    "measure the baseline in full instead of reusing a cached one after a drift check (default: off;"
    " the human is always measured fresh)"
)
MEASURE_LOCK_HELP = (
    "host (default): one measurement at a time on this host (pytest-xdist workers queue); none: no lock"
)
HINTS_HELP = (
    "what the prompt adds to the description: none (default), or files (the target files, as the"
    " original runs)"
)
CLONE_TIMEOUT_HELP = (
    "minutes a clone or fetch of a task repository may take before it is killed (default 60);"
    " git's HTTP transport also gives up after 2 minutes below 1 kB/s"
)
AGENT_DISK_HELP = (
    "how much an agent may add to its working copy and logs, e.g. 5g (default 20g; none: no limit);"
    " past it the agent is stopped (stop reason disk_limit) and its patch is discarded"
)
JUDGE_HELP = "soft-metric judges, comma-separated: overlap, anthropic:MODEL, openai:MODEL (default: none)"
JUDGE_TIMEOUT_HELP = "seconds a model judge waits for each HTTP attempt before giving up on it (default 60)"
JUDGE_RETRIES_HELP = "retries of a model judge's HTTP request after a timeout, 429 or 5xx (default 2)"
PRICES_HELP = (
    "JSON or TOML file of model prices for judges and CLI agents, USD per million tokens:"
    " {model: [input, output]} or {model: [input, output, cached input]}, laid over the built-in list"
    " prices (default: those; cached input without a third figure costs as input)"
)
JUDGE_PRICES_HELP = (
    "old name of --isobench-prices, still accepted: the same price file, for judges and agents"
    " (default: the built-in list prices)"
)
MAX_TURNS_HELP = (
    "CLI agents: the most model turns (Claude Code --max-turns, TRAE --max-steps; Codex has no such"
    " limit and is held by the time budget) (default 120; none: the CLI's own default)"
)
BUDGET_USD_HELP = (
    "agents that call a model: the most an attempt may spend in USD, enforced by the model gateway"
    " (and Claude Code's --max-budget-usd); past it the attempt stops with reason budget (default: none)"
)
MAX_TOKENS_HELP = (
    "agents that call a model: the most tokens (input + output) an attempt may use, enforced by the"
    " model gateway; past it the attempt stops with reason budget (default: none)"
)
GATEWAY_TIMEOUT_HELP = (
    "agents that call a model: seconds the model gateway waits for an upstream's next bytes (a slow"
    " reasoning answer, a stalled stream) before it answers the agent 504 (default: 300)"
)
CLAUDE_CLI_HELP = (
    "the claude executable for claude-code (default: `claude` on PATH, else the one bundled with"
    " pip install 'pytest-isobench[agents]')"
)
CODEX_CLI_HELP = (
    "the codex executable for codex (default: `codex` on PATH, else the one bundled with"
    " pip install 'pytest-isobench[agents]')"
)
TRAE_CLI_HELP = "the trae-cli executable for trae:* agents (default: `trae-cli` on PATH; see the README)"
KEEP_WORK_HELP = "keep the agent's working copy and the variant trees after each task (default: off)"
BASE_IMAGE_HELP = (
    "docker: image the containers start from (default: isobench/base:bookworm-py3 for source tasks, a CUDA"
    " + Python image for vllm/sglang task images)"
)
AGENT_NETWORK_HELP = (
    "how the agent reaches its model: gateway (through the harness's model gateway, keys stay outside;"
    " docker: the container has no other network), none (no model, no network), bridge (docker: the"
    " whole network and the real keys inside: an opt-out), auto (default: gateway for agents that call"
    " a model, none for the others)"
)
AGENT_CPUS_HELP = "docker: CPUs the agent container may use (default: min(8, this machine's))"
AGENT_MEMORY_HELP = "docker: memory limit of the agent container, e.g. 16g (default)"
AGENT_PIDS_HELP = "docker: process limit of the agent container (default 4096)"
GPUS_HELP = (
    "docker: GPU ids tasks may lease, e.g. 0,1,2,3 (default: every GPU nvidia-smi lists); none: no GPU"
)
SHM_SIZE_HELP = "docker: shared memory of the measurement containers (default 16g)"
MODEL_CACHE_HELP = (
    "folder of model weights, HF_HOME of the benchmarks (docker: mounted into the measurement containers;"
    " default: the usual Hugging Face cache; fill it with `python -m pytest_isobench prefetch`)"
)
DATASET_CACHE_HELP = (
    "folder of the benchmark datasets tasks declare under [inputs], the commands' {dataset_dir}"
    " (default: <cache-dir>/datasets; fill it with `python -m pytest_isobench prefetch`)"
)
MEASURE_NETWORK_HELP = (
    "docker: measurement containers' network: none (default; server and client share the container) or host"
)
AGENT_ENV_HELP = (
    "variable of this environment the agent gets, e.g. its model's API key (repeatable; default: none)."
    " Local: the agent otherwise gets only PATH, HOME, TMPDIR, TERM, locale, CUDA_VISIBLE_DEVICES and"
    " ISOBENCH_*; docker: keys only with --isobench-agent-network=bridge"
)
REDACT_HELP = (
    "one more variable whose value is a secret, redacted from artifacts, logs and reports (repeatable;"
    " default: none beyond *_API_KEY, *_TOKEN, *_SECRET, *_PASSWORD and the known key names)"
)
HTML_HELP = (
    "write the run's HTML report to PATH when the session ends (controller only; also under pytest-xdist);"
    " a self-contained page: the summary, every task's verdicts and evidence (default: none)"
)
EXECUTOR_HELP = (
    "where each task's job runs: local (default: in the pytest process) or ray[:ADDRESS] (a Ray"
    " cluster: the agent and measurement stages become cluster tasks; default address: $RAY_ADDRESS,"
    " else a running local cluster, else a new local instance; needs pytest-isobench[ray])"
)
EXECUTOR_STORAGE_HELP = (
    "ray: a folder every node and the controller share, where artifact files too big to travel back"
    " (over 64 MiB) are copied (default: none; they stay on the node, listed in executor.json)"
)
EXECUTOR_TIMEOUT_HELP = (
    "ray: minutes an item waits for its result once submitted, queueing included, before it errors"
    " (default: none; a lost node or a cluster that stops answering errors at once)"
)
PRUNE_HELP = (
    "docker: when the engine's disk runs low, remove the project's images, least recently used first"
    " (default: off)"
)
CORRECTNESS_HELP = (
    "which agent patches the task's correctness checks run for: passing (default: those that pass the"
    " hard gate), all, or off"
)
CORRECTNESS_GATE_HELP = (
    "a correctness fail fails the item (pass = hard gate and correct); default: off (recorded only:"
    " outcome, marker isobench_correctness_fail, summary column 'incorrect')"
)
LM_EVAL_DATA_HELP = (
    "lm_eval checks on an offline machine: a folder of lm-eval task YAMLs over local files (dataset_path:"
    " json, data_files), passed as lm-eval's --include_path, with Hugging Face offline mode on"
    " (default: none; the data comes from the hub or the model cache)"
)

# Environment variables the plugin reads besides the options' own (listed at the end of --help).
ENV_VARS: tuple[tuple[str, str], ...] = (
    (
        "ISOBENCH_<OPTION>",
        "any --isobench-* option, e.g. ISOBENCH_ROUNDS=3 (command line > env > ini)",
    ),
    ("ISOBENCH_TASKS", "task files or roots, joined by ':' (like --isobench-tasks)"),
    ("ANTHROPIC_API_KEY", "key of the anthropic:MODEL judge"),
    ("ANTHROPIC_BASE_URL", "endpoint of the anthropic:MODEL judge (default: Anthropic's API)"),
    ("OPENAI_API_KEY", "key of the openai:MODEL judge (any value for a local endpoint)"),
    ("OPENAI_BASE_URL", "endpoint of the openai:MODEL judge, e.g. a local vLLM (default: OpenAI's API)"),
    ("HF_HOME", "the model cache without --isobench-model-cache (default: ~/.cache/huggingface)"),
    ("HF_TOKEN", "Hugging Face token for gated models and datasets"),
    ("CUDA_VISIBLE_DEVICES", "local backend: the GPUs tasks may use"),
    ("DOCKER_HOST", "docker backend: the engine (default: unix:///var/run/docker.sock)"),
    (
        "ISOBENCH_GPU_LOCK_DIR",
        "docker backend: GPU lease locks (default: <tmp>/isobench-gpu-locks)",
    ),
    ("ISOBENCH_DOCKER_DIR", "docker backend: the image templates folder (default: the project's docker/)"),
    ("ISOBENCH_NODE_DIR", "ray executor: a node's runs and caches (default: <tmp>/isobench-nodes/<node id>)"),
    (
        "ISOBENCH_PRUNE_MIN_FREE_GB",
        "docker backend: free GB below which --isobench-prune acts (default 50)",
    ),
)


def env_help_lines() -> list[str]:
    """The environment variables section ``--help`` ends with, like pytest's own."""
    width = max(len(name) for name, _ in ENV_VARS)
    return ["Environment variables (isobench):", *(f"  {n:<{width}} {text}" for n, text in ENV_VARS)]


# Each option: (flag, dest, ini type, help). The env var is dest in upper case; defaults live in resolve().
_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--isobench-agent", "isobench_agent", "string", AGENT_HELP),
    ("--isobench-backend", "isobench_backend", "string", BACKEND_HELP),
    ("--isobench-rounds", "isobench_rounds", "string", ROUNDS_HELP),
    ("--isobench-min-rounds", "isobench_min_rounds", "string", MIN_ROUNDS_HELP),
    ("--isobench-max-rounds", "isobench_max_rounds", "string", MAX_ROUNDS_HELP),
    ("--isobench-warmup", "isobench_warmup", "string", WARMUP_HELP),
    ("--isobench-time-budget", "isobench_time_budget", "string", BUDGET_HELP),
    ("--isobench-clone-timeout", "isobench_clone_timeout", "string", CLONE_TIMEOUT_HELP),
    ("--isobench-agent-disk", "isobench_agent_disk", "string", AGENT_DISK_HELP),
    ("--isobench-agent-max-turns", "isobench_agent_max_turns", "string", MAX_TURNS_HELP),
    ("--isobench-agent-budget-usd", "isobench_agent_budget_usd", "string", BUDGET_USD_HELP),
    ("--isobench-agent-max-tokens", "isobench_agent_max_tokens", "string", MAX_TOKENS_HELP),
    ("--isobench-gateway-timeout", "isobench_gateway_timeout", "string", GATEWAY_TIMEOUT_HELP),
    ("--isobench-claude-cli", "isobench_claude_cli", "string", CLAUDE_CLI_HELP),
    ("--isobench-codex-cli", "isobench_codex_cli", "string", CODEX_CLI_HELP),
    ("--isobench-trae-cli", "isobench_trae_cli", "string", TRAE_CLI_HELP),
    ("--isobench-runs-dir", "isobench_runs_dir", "string", RUNS_DIR_HELP),
    ("--isobench-cache-dir", "isobench_cache_dir", "string", CACHE_DIR_HELP),
    ("--isobench-run-id", "isobench_run_id", "string", RUN_ID_HELP),
    ("--isobench-measure-lock", "isobench_measure_lock", "string", MEASURE_LOCK_HELP),
    ("--isobench-hints", "isobench_hints", "string", HINTS_HELP),
    ("--isobench-judge", "isobench_judge", "string", JUDGE_HELP),
    ("--isobench-prices", "isobench_prices", "string", PRICES_HELP),
    ("--isobench-judge-prices", "isobench_judge_prices", "string", JUDGE_PRICES_HELP),
    ("--isobench-judge-timeout", "isobench_judge_timeout", "string", JUDGE_TIMEOUT_HELP),
    ("--isobench-judge-retries", "isobench_judge_retries", "string", JUDGE_RETRIES_HELP),
    ("--isobench-base-image", "isobench_base_image", "string", BASE_IMAGE_HELP),
    ("--isobench-agent-network", "isobench_agent_network", "string", AGENT_NETWORK_HELP),
    ("--isobench-agent-cpus", "isobench_agent_cpus", "string", AGENT_CPUS_HELP),
    ("--isobench-agent-memory", "isobench_agent_memory", "string", AGENT_MEMORY_HELP),
    ("--isobench-agent-pids", "isobench_agent_pids", "string", AGENT_PIDS_HELP),
    ("--isobench-gpus", "isobench_gpus", "string", GPUS_HELP),
    ("--isobench-shm-size", "isobench_shm_size", "string", SHM_SIZE_HELP),
    ("--isobench-model-cache", "isobench_model_cache", "string", MODEL_CACHE_HELP),
    ("--isobench-dataset-cache", "isobench_dataset_cache", "string", DATASET_CACHE_HELP),
    ("--isobench-measure-network", "isobench_measure_network", "string", MEASURE_NETWORK_HELP),
    ("--isobench-html", "isobench_html", "string", HTML_HELP),
    ("--isobench-executor", "isobench_executor", "string", EXECUTOR_HELP),
    ("--isobench-executor-storage", "isobench_executor_storage", "string", EXECUTOR_STORAGE_HELP),
    ("--isobench-executor-timeout", "isobench_executor_timeout", "string", EXECUTOR_TIMEOUT_HELP),
    ("--isobench-correctness", "isobench_correctness", "string", CORRECTNESS_HELP),
    ("--isobench-lm-eval-data", "isobench_lm_eval_data", "string", LM_EVAL_DATA_HELP),
)
# Repeatable variable names (the env var and ini value: names separated by commas or spaces).
_NAME_LISTS: tuple[tuple[str, str, str], ...] = (
    ("--isobench-agent-env", "isobench_agent_env", AGENT_ENV_HELP),
    ("--isobench-redact", "isobench_redact", REDACT_HELP),
)
_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--isobench-remeasure", "isobench_remeasure", REMEASURE_HELP),
    ("--isobench-keep-work", "isobench_keep_work", KEEP_WORK_HELP),
    ("--isobench-prune", "isobench_prune", PRUNE_HELP),
    ("--isobench-correctness-gate", "isobench_correctness_gate", CORRECTNESS_GATE_HELP),
)


@dataclass(frozen=True)
class Settings:
    """Everything the plugin reads from options, resolved once per process."""

    agent: str | None
    task_roots: tuple[Path, ...]
    explicit_task_roots: bool
    backend: str
    rounds: int
    warmup: int
    time_budget_min: float
    runs_dir: Path
    cache_dir: Path
    run_id: str | None
    remeasure: bool
    measure_lock: str
    keep_work: bool
    rootdir: Path
    hints: str = "none"
    # rounds: adaptive between min_rounds and max_rounds when rounds_auto, else ``rounds`` exactly
    rounds_auto: bool = False
    min_rounds: int = 5
    max_rounds: int = 20
    judges: tuple[str, ...] = ()
    prices: dict[str, tuple[float, ...]] | None = None  # --isobench-prices: for judges and CLI agents
    judge_timeout_s: float = 60.0
    judge_retries: int = 2
    # docker backend (see pytest_isobench.sandbox.docker)
    base_image: str | None = None
    agent_network: str = "auto"  # auto, gateway, none, bridge (pytest_isobench.gateway.access)
    agent_cpus: float = 8.0
    agent_memory: str = "16g"
    agent_pids: int = 4096
    gpus: tuple[str, ...] | None = None
    shm_size: str = "16g"
    model_cache: Path | None = None
    measure_network: str = "none"
    prune: bool = False
    dataset_cache: Path | None = None  # None: <cache_dir>/datasets
    clone_timeout_min: float = 60.0
    agent_disk_bytes: int | None = 20 * 1024**3
    # variables an agent gets (--isobench-agent-env) and extra secrets (--isobench-redact)
    agent_env: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    # CLI agents: turn and spending limits, and the CLIs named by options (family -> path)
    agent_max_turns: int | None = 120
    agent_budget_usd: float | None = None
    agent_max_tokens: int | None = None
    gateway_timeout_s: float = 300.0
    cli_paths: dict[str, str] = field(default_factory=dict)
    html: Path | None = None  # --isobench-html: the report written at session end
    # where jobs run (--isobench-executor NAME[:ARG]), and the ray executor's storage and wait limit
    executor: str = "local"
    executor_storage: Path | None = None
    executor_timeout_min: float | None = None
    # correctness checks: for which patches (passing, all, off), whether a fail fails the item, and
    # lm-eval's offline task folder
    correctness: str = "passing"
    correctness_gate: bool = False
    lm_eval_data: Path | None = None

    @property
    def dataset_dir(self) -> Path:
        """Where the tasks' declared datasets are kept: the commands' ``{dataset_dir}``."""
        return self.dataset_cache or self.cache_dir / "datasets"

    @property
    def rounds_text(self) -> str:
        """How many rounds, as the report header says it: ``auto(5-20)`` or the fixed number."""
        return f"auto({self.min_rounds}-{self.max_rounds})" if self.rounds_auto else str(self.rounds)

    @property
    def time_budget_s(self) -> float:
        return self.time_budget_min * 60.0

    @property
    def clone_timeout_s(self) -> float:
        return self.clone_timeout_min * 60.0

    @property
    def executor_timeout_s(self) -> float | None:
        return None if self.executor_timeout_min is None else self.executor_timeout_min * 60.0

    @property
    def work_dir(self) -> Path:
        """Scratch space for working copies and variant trees (removed after each task)."""
        return self.cache_dir.parent / "work"


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--isobench-*`` options and their ini twins."""
    group = parser.getgroup("isobench", "ISO-Bench: coding agents on real inference-optimization tasks")
    for name, dest, ini_type, help_text in _OPTIONS:
        group.addoption(name, dest=dest, default=None, help=f"{help_text} (ini: {dest}, env: {dest.upper()})")
        parser.addini(dest, help_text, type=ini_type, default=None)  # type: ignore[arg-type]
    for name, dest, help_text in _FLAGS:
        group.addoption(
            name,
            dest=dest,
            action="store_true",
            default=False,
            help=f"{help_text} (ini: {dest}, env: {dest.upper()}=1)",
        )
        parser.addini(dest, help_text, type="bool", default=False)
    for name, dest, help_text in _NAME_LISTS:
        env_help = f"(ini: {dest}, env: {dest.upper()})"
        group.addoption(
            name, dest=dest, action="append", default=[], metavar="NAME", help=f"{help_text} {env_help}"
        )
        parser.addini(dest, help_text, type="args", default=[])
    group.addoption(
        "--isobench-tasks",
        dest="isobench_tasks",
        action="append",
        default=[],
        metavar="PATH",
        help=TASKS_HELP,
    )
    parser.addini("isobench_tasks", TASKS_HELP, type="paths", default=[])


def _raw(config: pytest.Config, dest: str) -> tuple[Any, str]:
    """The first value set among CLI, environment and ini, with where it came from."""
    value = config.getoption(dest)
    if value is not None:
        return value, f"--{dest.replace('_', '-')}"
    env = os.environ.get(dest.upper())
    if env:
        return env, f"environment variable {dest.upper()}"
    ini = config.getini(dest)
    if ini not in (None, ""):
        return ini, f"ini option {dest}"
    return None, "default"


def _number(config: pytest.Config, dest: str, default: float, kind: type, minimum: float) -> Any:
    value, where = _raw(config, dest)
    if value is None:
        return kind(default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{where}: {value!r} is not a valid {kind.__name__}") from None
    if number < minimum:
        raise pytest.UsageError(f"{where}: {value!r} must be at least {minimum}")
    return number


def _optional_number(
    config: pytest.Config, dest: str, default: float | None, kind: type, minimum: float
) -> Any:
    """Like ``_number``, where ``none`` (or no value and a None default) means no limit."""
    value, _ = _raw(config, dest)
    if value is None:
        return None if default is None else kind(default)
    if str(value).strip().lower() == "none":
        return None
    return _number(config, dest, default if default is not None else 0, kind, minimum)


CLI_OPTIONS = {
    "claude-code": "isobench_claude_cli",
    "codex": "isobench_codex_cli",
    "trae": "isobench_trae_cli",
}


def _cli_paths(config: pytest.Config) -> dict[str, str]:
    """The agent CLIs named by options (``--isobench-claude-cli`` ...), as given (checked by the agent)."""
    found = {}
    for family, dest in CLI_OPTIONS.items():
        value, _ = _raw(config, dest)
        if value is not None and str(value).strip():
            found[family] = str(Path(str(value).strip()).expanduser())
    return found


def _path(config: pytest.Config, dest: str, default: Path) -> Path:
    value, where = _raw(config, dest)
    if value is None:
        return default
    base = (
        config.inipath.parent if where.startswith("ini") and config.inipath else config.invocation_params.dir
    )
    return (base / Path(str(value)).expanduser()).resolve()


def _optional_path(config: pytest.Config, dest: str) -> Path | None:
    value, _ = _raw(config, dest)
    return None if value is None else _path(config, dest, Path())


def _task_roots(config: pytest.Config) -> tuple[tuple[Path, ...], bool]:
    cli: list[str] = config.getoption("isobench_tasks") or []
    if cli:
        return tuple((config.invocation_params.dir / p).resolve() for p in cli), True
    env = os.environ.get("ISOBENCH_TASKS")
    if env:
        parts = [p for p in env.split(os.pathsep) if p]
        return tuple((config.invocation_params.dir / p).resolve() for p in parts), True
    ini: list[Path] = config.getini("isobench_tasks")
    if ini:
        return tuple(Path(p).resolve() for p in ini), True
    return (config.rootpath / "tasks",), False


def _names(config: pytest.Config, dest: str) -> tuple[str, ...]:
    """A repeatable name option: CLI values, else the env var, else the ini value; each a variable name."""
    flag = f"--{dest.replace('_', '-')}"
    found: list[tuple[str, str]] = [(v, flag) for v in config.getoption(dest) or []]
    if not found and os.environ.get(dest.upper()):
        found = [(v, f"environment variable {dest.upper()}") for v in os.environ[dest.upper()].split(",")]
    if not found:
        found = [(str(v), f"ini option {dest}") for v in config.getini(dest) or []]
    names: dict[str, None] = {}
    for value, where in found:
        for name in value.replace(",", " ").split():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise pytest.UsageError(f"{where}: {name!r} is not an environment variable name")
            names[name] = None
    return tuple(names)


def _flag(config: pytest.Config, dest: str) -> bool:
    if config.getoption(dest):
        return True
    env = os.environ.get(dest.upper(), "").strip().lower()
    if env:
        return env in ("1", "true", "yes", "on")
    return bool(config.getini(dest))


def resolve(config: pytest.Config) -> Settings:
    """Resolve every option once; bad values become a ``pytest.UsageError`` naming the option."""
    roots, explicit = _task_roots(config)
    for root in roots:
        if explicit and not root.exists():
            raise pytest.UsageError(f"--isobench-tasks: {root} does not exist (give a task file or a folder)")
    if explicit:
        from .tasks import empty_roots, no_tasks_message

        for root in empty_roots(roots):
            raise pytest.UsageError(f"--isobench-tasks: {no_tasks_message(root)}")
    agent, _ = _raw(config, "isobench_agent")
    backend, _ = _raw(config, "isobench_backend")
    run_id, _ = _raw(config, "isobench_run_id")
    lock, where = _raw(config, "isobench_measure_lock")
    if lock not in (None, "host", "none"):
        raise pytest.UsageError(f"{where}: {lock!r} is not one of: host, none")
    hints, where = _raw(config, "isobench_hints")
    if hints not in (None, "none", "files"):
        raise pytest.UsageError(f"{where}: {hints!r} is not one of: none, files")
    judges, judge_where = _raw(config, "isobench_judge")
    correctness, where = _raw(config, "isobench_correctness")
    if correctness not in (None, "passing", "all", "off"):
        raise pytest.UsageError(f"{where}: {correctness!r} is not one of: passing, all, off")
    lm_eval_data = _optional_path(config, "isobench_lm_eval_data")
    if lm_eval_data is not None and not lm_eval_data.is_dir():
        _, where = _raw(config, "isobench_lm_eval_data")
        raise pytest.UsageError(
            f"{where}: {lm_eval_data} is not a folder (give the folder of lm-eval task YAMLs)"
        )
    state = config.rootpath / ".isobench"
    settings = Settings(
        agent=str(agent).strip() or None if agent is not None else None,
        task_roots=roots,
        explicit_task_roots=explicit,
        backend=str(backend or "local"),
        **_rounds(config),
        warmup=_number(config, "isobench_warmup", 1, int, 0),
        time_budget_min=_number(config, "isobench_time_budget", 120.0, float, 0.001),
        runs_dir=_path(config, "isobench_runs_dir", state / "runs"),
        cache_dir=_path(config, "isobench_cache_dir", state / "cache"),
        run_id=str(run_id) if run_id else None,
        remeasure=_flag(config, "isobench_remeasure"),
        measure_lock=str(lock or "host"),
        keep_work=_flag(config, "isobench_keep_work"),
        rootdir=config.rootpath,
        hints=str(hints or "none"),
        judges=_judge_specs(config, judges, judge_where),
        prices=_prices(config),
        dataset_cache=_optional_path(config, "isobench_dataset_cache"),
        judge_timeout_s=_number(config, "isobench_judge_timeout", 60.0, float, 0.001),
        judge_retries=_number(config, "isobench_judge_retries", 2, int, 0),
        clone_timeout_min=_number(config, "isobench_clone_timeout", 60.0, float, 0.001),
        agent_disk_bytes=_agent_disk(config),
        agent_env=_names(config, "isobench_agent_env"),
        redact=_names(config, "isobench_redact"),
        agent_max_turns=_optional_number(config, "isobench_agent_max_turns", 120, int, 1),
        agent_budget_usd=_optional_number(config, "isobench_agent_budget_usd", None, float, 0.0001),
        agent_max_tokens=_optional_number(config, "isobench_agent_max_tokens", None, int, 1),
        gateway_timeout_s=_number(config, "isobench_gateway_timeout", 300.0, float, 0.001),
        cli_paths=_cli_paths(config),
        html=_optional_path(config, "isobench_html"),
        correctness=str(correctness or "passing"),
        correctness_gate=_flag(config, "isobench_correctness_gate"),
        lm_eval_data=lm_eval_data,
        **_docker_settings(config),
        **_executor_settings(config),
    )
    if settings.backend == "docker":
        from .sandbox.docker import preflight

        try:
            preflight(settings)
        except RuntimeError as exc:
            raise pytest.UsageError(f"--isobench-backend=docker: {exc}") from None
    return settings


def _agent_disk(config: pytest.Config) -> int | None:
    value, where = _raw(config, "isobench_agent_disk")
    if value is None:
        return 20 * 1024**3
    if str(value).strip().lower() in ("none", "0"):
        return None
    from .sandbox.disk import parse_size

    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None


def _rounds(config: pytest.Config) -> dict[str, Any]:
    """``--isobench-rounds`` (auto or a number) with the adaptive bounds, checked against each other."""
    value, where = _raw(config, "isobench_rounds")
    auto = value is None or str(value).strip().lower() == "auto"
    low = _number(config, "isobench_min_rounds", 5, int, 1)
    high = _number(config, "isobench_max_rounds", 20, int, 1)
    if high < low:
        raise pytest.UsageError(
            f"--isobench-max-rounds ({high}) is below --isobench-min-rounds ({low}): raise the maximum"
        )
    if auto:
        return {"rounds": low, "rounds_auto": True, "min_rounds": low, "max_rounds": high}
    try:
        rounds = int(str(value).strip())
    except ValueError:
        raise pytest.UsageError(f"{where}: {value!r} is not a valid int (nor auto)") from None
    if rounds < 1:
        raise pytest.UsageError(f"{where}: {value!r} must be at least 1 (or auto)")
    return {"rounds": rounds, "rounds_auto": False, "min_rounds": low, "max_rounds": high}


def _docker_settings(config: pytest.Config) -> dict[str, Any]:
    """The docker backend's options (validated whatever the backend, so a typo is caught early)."""
    found: dict[str, Any] = {}
    for dest, choices in (
        ("isobench_agent_network", ("auto", "gateway", "none", "bridge")),
        ("isobench_measure_network", ("none", "host")),
    ):
        value, where = _raw(config, dest)
        if value is not None and value not in choices:
            raise pytest.UsageError(f"{where}: {value!r} is not one of: {', '.join(choices)}")
        if value is not None:
            found[dest.removeprefix("isobench_")] = str(value)
    for dest in ("isobench_agent_memory", "isobench_shm_size"):
        value, where = _raw(config, dest)
        if value is not None and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", str(value).strip()):
            raise pytest.UsageError(f"{where}: {value!r} is not a size such as 512m or 16g")
        if value is not None:
            found[dest.removeprefix("isobench_")] = str(value).strip().lower()
    found["agent_cpus"] = _number(
        config, "isobench_agent_cpus", min(8.0, float(os.cpu_count() or 1)), float, 0.01
    )
    found["agent_pids"] = _number(config, "isobench_agent_pids", 4096, int, 16)
    image, _ = _raw(config, "isobench_base_image")
    found["base_image"] = str(image).strip() if image else None
    gpus, where = _raw(config, "isobench_gpus")
    if gpus is not None:
        from .sandbox.gpus import parse_ids

        try:
            found["gpus"] = parse_ids(str(gpus))
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
    cache, _ = _raw(config, "isobench_model_cache")
    if cache is not None:
        found["model_cache"] = _path(config, "isobench_model_cache", Path())
    found["prune"] = _flag(config, "isobench_prune")
    return found


def _executor_settings(config: pytest.Config) -> dict[str, Any]:
    """``--isobench-executor`` (NAME[:ARG], checked against the registry when the executor is built)."""
    value, where = _raw(config, "isobench_executor")
    spec = str(value).strip() if value is not None else "local"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(:.*)?", spec):
        raise pytest.UsageError(f"{where}: {value!r} is not NAME or NAME:ARG (e.g. local, ray:HOST:6379)")
    return {
        "executor": spec,
        "executor_storage": _optional_path(config, "isobench_executor_storage"),
        "executor_timeout_min": _optional_number(config, "isobench_executor_timeout", None, float, 0.001),
    }


def _prices(config: pytest.Config) -> dict[str, tuple[float, ...]] | None:
    """``--isobench-prices``, or its old name ``--isobench-judge-prices`` (command line > env > ini)."""
    given = [(dest, *_raw(config, dest)) for dest in ("isobench_prices", "isobench_judge_prices")]
    given = [entry for entry in given if entry[1] is not None]
    if not given:
        return None
    best = min(_source_rank(where) for _, _, where in given)
    tied = [entry for entry in given if _source_rank(entry[2]) == best]
    if len({str(value) for _, value, _ in tied}) > 1:
        raise pytest.UsageError(
            f"{tied[0][2]} and {tied[1][2]} name different price files: give one (--isobench-prices)"
        )
    dest, value, where = tied[0]
    from .pricing import load_prices

    try:
        return load_prices(_path(config, dest, Path(str(value))))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None


def _source_rank(where: str) -> int:
    """Where ``_raw`` found a value: 0 the command line, 1 the environment, 2 the ini file."""
    return 0 if where.startswith("--") else 1 if where.startswith("environment") else 2


def _judge_specs(config: pytest.Config, value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()  # no judge: do not even import the judge package (and the LLM SDKs)
    from .judge import parse_judge_specs

    # Only the prefixes conftest.py files register: the built-ins keep their forms (anthropic:MODEL).
    known = {name for found in config.hook.pytest_isobench_judges() for name in found}
    try:
        return tuple(parse_judge_specs(value, known=known))
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None


__all__ = ["ENV_VARS", "Settings", "add_options", "env_help_lines", "resolve"]
