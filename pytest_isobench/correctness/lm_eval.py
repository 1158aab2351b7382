"""``lm_eval`` checks: lm-evaluation-harness against the task's server on the human and the agent tree.

lm-eval runs here, on the harness side (``pip install 'pytest-isobench[correctness]'``), as its own
process against the server's OpenAI-compatible endpoint (``local-completions`` or
``local-chat-completions``, no tokenizer: ``tokenizer_backend=none``, ``tokenized_requests=False``).
Its per-item samples (``--log_samples``) pair the two runs item by item.

The verdict: ``fail`` when the agent's accuracy is more than ``tolerance`` points below the human's
(the paper's rule, kept for comparability) or when the agent is significantly worse on the paired
items (exact one-sided McNemar test at ``alpha``); ``pass`` otherwise.

Offline machines: ``--isobench-lm-eval-data DIR`` is a folder of lm-eval task YAMLs over local files
(``dataset_path: json`` with ``data_files``), given to lm-eval as ``--include_path``; a YAML there whose
``task`` is the check's task (``gsm8k``) is used instead of the built-in one. Hugging Face offline
mode is then on, and datasets come from the model cache (``--isobench-model-cache``) when it is set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..sandbox.procs import run as run_command
from ..secrets import without_secrets
from ..tasks import LmEvalCheck
from .base import CheckContext, CheckError, ServerFailed, task_server
from .cache import HumanResultCache, human_key
from .paired import mcnemar

INSTALL_HINT = "pip install 'pytest-isobench[correctness]'"
ENDPOINTS = {"local-completions": "/v1/completions", "local-chat-completions": "/v1/chat/completions"}


@dataclass(frozen=True)
class LmEvalRun:
    """One lm-eval run: the accuracy (0..1) and each item's correctness, by lm-eval's doc id."""

    accuracy: float
    items: dict[str, bool]
    samples: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lm_eval_installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def lm_eval_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("lm-eval")
    except metadata.PackageNotFoundError:
        return None


def lm_eval_argv(
    config: LmEvalCheck, base_url: str, model: str, output_dir: Path, include_path: Path | None
) -> list[str]:
    """The lm-eval command line for one run against ``base_url`` (``http://host:port``)."""
    model_args = ",".join(
        (
            f"model={model}",
            f"base_url={base_url}{ENDPOINTS[config.model_type]}",
            "tokenizer_backend=none",
            "tokenized_requests=False",
            "num_concurrent=1",
            "max_retries=3",
        )
    )
    argv = [sys.executable, "-m", "lm_eval", "run", "--model", config.model_type, "--model_args", model_args]
    argv += ["--tasks", config.task, "--limit", str(config.limit), "--output_path", str(output_dir)]
    argv += ["--log_samples", "--seed", "0,1234,1234,1234"]
    if config.num_fewshot is not None:
        argv += ["--num_fewshot", str(config.num_fewshot)]
    if config.model_type == "local-chat-completions":
        argv += ["--apply_chat_template"]
    if include_path is not None:
        argv += ["--include_path", str(include_path)]
    return argv


def lm_eval_environment(data_dir: Path | None, model_cache: Path | None) -> dict[str, str]:
    """This environment less its secrets; offline mode with a data folder; the model cache as HF_HOME."""
    env = without_secrets(os.environ)
    if model_cache is not None:
        env["HF_HOME"] = str(model_cache)
    if data_dir is not None:
        env.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return env


def run_lm_eval(
    config: LmEvalCheck,
    base_url: str,
    model: str,
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    model_cache: Path | None = None,
) -> LmEvalRun:
    """Run lm-eval once and read its results; CheckError naming what went wrong."""
    if not lm_eval_installed():
        raise CheckError(f"lm-eval is not installed here: {INSTALL_HINT}")
    output_dir = out_dir / "lm-eval"
    argv = lm_eval_argv(config, base_url, model, output_dir, data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "command.txt").write_text(shlex.join(argv) + "\n", encoding="utf-8")
    result = run_command(
        shlex.join(argv),
        cwd=out_dir,
        env=lm_eval_environment(data_dir, model_cache),
        timeout_s=config.timeout_s,
        stdout_path=out_dir / "lm-eval.stdout.txt",
        stderr_path=out_dir / "lm-eval.stderr.txt",
    )
    if result.timed_out:
        raise CheckError(f"lm-eval ran past {config.timeout_s:g} s (timeout_s of the lm_eval check)")
    if result.returncode != 0:
        raise CheckError(f"lm-eval exited with code {result.returncode}: {result.stderr_tail(4)}")
    return read_run(output_dir, config)


def read_run(output_dir: Path, config: LmEvalCheck) -> LmEvalRun:
    """The accuracy from ``results_*.json`` and per-item correctness from ``samples_<task>_*.jsonl``."""
    results = sorted(output_dir.rglob("results_*.json"))
    if not results:
        raise CheckError(f"lm-eval wrote no results_*.json under {output_dir}")
    data = json.loads(results[-1].read_text(encoding="utf-8"))
    task_results = data.get("results", {}).get(config.task)
    if task_results is None:
        raise CheckError(
            f"lm-eval's results have no task {config.task!r} (found: {sorted(data.get('results', {}))})"
        )
    if config.metric not in task_results:
        found = sorted(k for k in task_results if "," in k and "_stderr" not in k)
        raise CheckError(
            f"lm-eval's results for {config.task} have no {config.metric!r} (found: {found}); set `metric`"
            " of the lm_eval check to one of them"
        )
    metric, _, filter_name = config.metric.partition(",")
    items: dict[str, bool] = {}
    for path in sorted(results[-1].parent.glob(f"samples_{config.task}_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            sample = json.loads(line)
            if filter_name and sample.get("filter", filter_name) != filter_name:
                continue
            if metric in sample:
                items[str(sample["doc_id"])] = float(sample[metric]) > 0.5
    if not items:
        raise CheckError(f"lm-eval wrote no per-item samples for {config.task} with {config.metric!r}")
    return LmEvalRun(float(task_results[config.metric]), items, len(items))


def compare_runs(human: LmEvalRun, agent: LmEvalRun, config: LmEvalCheck) -> dict[str, Any]:
    """The verdict from two runs: the tolerance on accuracies and the paired McNemar test."""
    human_pct, agent_pct = 100.0 * human.accuracy, 100.0 * agent.accuracy
    within = agent_pct >= human_pct - config.tolerance - 1e-9
    paired = mcnemar(human.items, agent.items)
    worse = paired.human_only > paired.agent_only and paired.p_agent_worse < config.alpha
    result: dict[str, Any] = {
        "status": "fail" if worse or not within else "pass",
        "kind": "lm_eval",
        "task": config.task,
        "metric": config.metric,
        "limit": config.limit,
        "human_accuracy_pct": round(human_pct, 2),
        "agent_accuracy_pct": round(agent_pct, 2),
        "difference_pts": round(agent_pct - human_pct, 2),
        "tolerance_pts": config.tolerance,
        "within_tolerance": within,
        "paired": paired.to_json(),
        "alpha": config.alpha,
        "significantly_worse": worse,
    }
    reasons = []
    if not within:
        reasons.append(
            f"accuracy {agent_pct:.1f} % vs the human's {human_pct:.1f} %, more than {config.tolerance:g}"
            " point(s) below"
        )
    if worse:
        reasons.append(
            f"significantly worse on the paired items: {paired.human_only} right only for the human,"
            f" {paired.agent_only} only for the agent (exact McNemar p = {paired.p_agent_worse:.4g}"
            f" one-sided, {paired.p_two_sided:.4g} two-sided)"
        )
    if reasons:
        result["reason"] = "; ".join(reasons)
    return result


class LmEvalAccuracy:
    """The paper's accuracy check, run for real, with a paired comparison."""

    kind = "lm_eval"

    def run(self, config: BaseModel, ctx: CheckContext) -> dict[str, Any]:
        assert isinstance(config, LmEvalCheck)
        if not lm_eval_installed():
            raise CheckError(f"lm-eval is not installed here: {INSTALL_HINT}")
        data_dir, model_cache = ctx.settings.lm_eval_data, ctx.settings.model_cache
        cache = HumanResultCache(ctx.settings.cache_dir)
        extra = {"lm_eval": lm_eval_version(), "data": folder_digest(data_dir)}
        key = human_key(ctx.task, config, backend=ctx.sandbox.name, extra=extra)
        cached, problem = (None, None) if ctx.settings.remeasure else cache.load(ctx.task, self.kind, key)
        if cached is not None:
            human, source = LmEvalRun(**cached), "cache"
        else:
            human = self._run(ctx, config, "human", data_dir, model_cache)
            cache.store(ctx.task, self.kind, key, human.to_json(), {"backend": ctx.sandbox.name, **extra})
            source = "fresh"
        agent = self._run(ctx, config, "agent", data_dir, model_cache)
        result = compare_runs(human, agent, config)
        result["human_source"] = source
        if problem:
            result["notes"] = [problem]
        return result

    def _run(
        self,
        ctx: CheckContext,
        config: LmEvalCheck,
        variant: str,
        data_dir: Path | None,
        model_cache: Path | None,
    ) -> LmEvalRun:
        ctx.progress(f"correctness: lm-eval {config.task} (limit {config.limit}) on the {variant} server")
        with task_server(ctx, variant, from_harness=True) as base_url:
            model = ctx.task.benchmark.model or served_model(base_url)
            try:
                return run_lm_eval(
                    config, base_url, model, ctx.out_dir / variant, data_dir=data_dir, model_cache=model_cache
                )
            except CheckError as exc:
                if variant == "agent":  # the human's run worked the same way: the agent's server broke it
                    raise ServerFailed(variant, f"failed lm-eval: {exc}") from None
                raise CheckError(f"the human server: {exc}") from None


def served_model(base_url: str) -> str:
    """The first model the server lists under ``/v1/models``."""
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="isobench", timeout=60.0, max_retries=2)
    try:
        models = [model.id for model in client.models.list()]
    except openai.OpenAIError as exc:
        raise CheckError(f"cannot list the server's models: {type(exc).__name__}: {exc}") from None
    if not models:
        raise CheckError("the server lists no model under /v1/models")
    return models[0]


def folder_digest(folder: Path | None) -> str | None:
    """What identifies the offline data: every file's path, size and modification time."""
    if folder is None:
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()
