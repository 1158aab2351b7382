"""One (task, agent): prepare → solve → measure → score, with every stage's artifacts on disk.

Driven without pytest. Finished stages are kept in the task's artifact folder, so a rerun with the
same run id resumes after a crash instead of starting over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agents.base import Agent, AgentRun, SolveContext
from .agents.cli import ModelApiError
from .agents.prompt import render_prompt
from .gateway.access import ModelAccess, account, direct_access, gateway_access, resolve_network
from .inputs import check_inputs, with_dataset_dir
from .measure.benchfiles import BenchmarkFiles
from .measure.cache import CacheEntry, MeasurementCache, measurement_key
from .measure.runner import (
    FAILURE_REASON,
    REFERENCE_VARIANTS,
    BenchRun,
    RoundPolicy,
    first_failure,
    measure,
    primary_values,
)
from .measure.verdict import BAND_PCT, HardVerdict, describe, hard_verdict
from .measure.workload import check_workload
from .options import Settings
from .results import Outcome, append_outcome, write_json
from .sandbox.base import (
    PatchDoesNotApply,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    WorkdirDestroyed,
)
from .sandbox.disk import DISK_LIMIT
from .sandbox.gitutil import GitError, git
from .sandbox.repos import RepoError, file_lock, materialise
from .scoring import agent_slug, is_hard_pass, quadrant
from .secrets import contains_secret, redact, redact_data, redact_tree
from .tasks import LoadedTask, Task

Progress = Callable[[str], None]
log = logging.getLogger("pytest_isobench")
# Fresh baseline rounds that check a cached baseline for drift.
DRIFT_ROUNDS = 3
DRIFT_TOLERANCE_PCT = 2.5


class TaskSkipped(Exception):
    """The task cannot run here (e.g. not enough GPUs); the message is the reason."""


class InfrastructureError(Exception):
    """The harness, not the agent, failed; the outcome is recorded with status ``error``."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class Job:
    """One (task, agent) in one run."""

    entry: LoadedTask
    agent: Agent
    agent_spec: str
    settings: Settings
    run_id: str
    sandbox_factory: SandboxFactory
    extra_judges: Mapping[str, Any] = field(default_factory=dict)
    extra_checks: Mapping[str, Any] = field(default_factory=dict)  # correctness kinds a conftest adds

    @property
    def task(self) -> Task:
        return self.entry.task

    @property
    def run_dir(self) -> Path:
        return self.settings.runs_dir / self.run_id

    @property
    def artifacts(self) -> Path:
        return self.run_dir / self.task.id / agent_slug(self.agent_spec)


def check_runnable(job: Job) -> None:
    """Raise TaskSkipped when the task cannot run here, before anything is cloned or built."""
    task = job.task
    if task.status != "ready":
        raise TaskSkipped(f"{task.id} is incomplete: {task.status_reason}")
    needed = task.benchmark.gpus or 0
    available = job.sandbox_factory.gpus_available() if needed else 0
    if needed > available:
        raise TaskSkipped(f"{task.id} needs {needed} GPU(s); {available} available to this backend here")


def job_outcome(job: Job, **fields: Any) -> Outcome:
    """A new outcome naming the job (task, repo, agent, run, hints, artifacts), with ``fields`` set."""
    return Outcome(
        task_id=job.task.id,
        repo=job.task.repo,
        agent=job.agent_spec,
        run_id=job.run_id,
        hints=job.settings.hints,
        artifacts=str(job.artifacts),
        **fields,
    )


def run_job(job: Job, progress: Progress | None = None) -> Outcome:
    """Run or resume one job; raise TaskSkipped or InfrastructureError, else return the outcome."""
    say = progress or (lambda _message: None)
    done = job.artifacts / "outcome.json"
    if done.is_file():
        with contextlib.suppress(ValueError):
            outcome = Outcome.model_validate_json(done.read_text(encoding="utf-8"))
            if outcome.status == "ok":
                say("resumed: outcome already recorded")
                if outcome.correctness_detail:  # this run's --isobench-correctness-gate decides
                    outcome.correctness_detail["gate"] = job.settings.correctness_gate
                if _needs_judging(job, outcome):
                    outcome = _rejudge(job, outcome, say)
                return outcome
    started = time.monotonic()
    outcome = job_outcome(job)
    try:
        _run_stages(job, outcome, say)
    except (SandboxError, RepoError, GitError, OSError, ValueError) as exc:
        outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
        outcome.hard, outcome.quadrant = None, "unscored"
        if isinstance(exc, ModelApiError):  # what the attempt spent before the API failed
            outcome.agent_run = exc.agent_run
    finally:
        redact_tree(job.artifacts)  # logs, benchmark output, whatever a stage left
    outcome.duration_s = round(time.monotonic() - started, 3)
    outcome = _record(job, outcome)
    if outcome.status == "error":
        raise InfrastructureError(outcome.error or "infrastructure error", outcome)
    return outcome


def solve_job(job: Job, progress: Progress | None = None) -> None:
    """The stages up to and including the patch (prepare, solve), recorded for ``run_job`` to resume.

    Nothing happens when the patch or the whole outcome is already recorded; trouble is recorded as
    ``run_job`` records it (an error outcome) and raised as InfrastructureError.
    """
    say = progress or (lambda _message: None)
    art = job.artifacts
    patched = (art / "patch.diff").is_file() and (art / "agent.json").is_file()
    if patched or _recorded_ok(art / "outcome.json"):
        return
    started = time.monotonic()
    try:
        repo, spec, sandbox = _prepare(job, say)
        try:
            _solve(job, sandbox, spec, repo, say)
        finally:
            sandbox.close()
    except (SandboxError, RepoError, GitError, OSError, ValueError) as exc:
        outcome = job_outcome(
            job,
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            duration_s=round(time.monotonic() - started, 3),
        )
        if isinstance(exc, ModelApiError):
            outcome.agent_run = exc.agent_run
        redact_tree(art)
        outcome = _record(job, outcome)
        raise InfrastructureError(outcome.error or "infrastructure error", outcome) from None


def _recorded_ok(path: Path) -> bool:
    """Whether ``path`` holds an outcome with status ok (what ``run_job`` returns as is)."""
    try:
        return Outcome.model_validate_json(path.read_text(encoding="utf-8")).status == "ok"
    except (OSError, ValueError):
        return False


def _record(job: Job, outcome: Outcome) -> Outcome:
    """Store the outcome, redacted; the redacted outcome is also what the reports get."""
    clean = Outcome.model_validate(redact_data(outcome.to_wire()))
    write_json(job.artifacts / "outcome.json", clean.to_wire())
    append_outcome(job.run_dir, clean)
    return clean


def _prepare(job: Job, say: Progress) -> tuple[Path, SandboxSpec, Sandbox]:
    """The task repository and the job's sandbox (the first stages of ``run_job`` and ``solve_job``)."""
    task = job.task
    check_inputs(task, job.settings.dataset_dir, job.settings.model_cache)  # before any clone or agent
    say("preparing the task repository")
    repo = materialise(
        task,
        job.entry.path,
        job.settings.cache_dir / "repos",
        timeout_s=job.settings.clone_timeout_s,
        progress=say,
    )
    workspace = job.settings.work_dir / job.run_id / task.id / job.artifacts.name
    tools = job.agent.tools() if hasattr(job.agent, "tools") else {}
    network = resolve_network(job.settings.agent_network, job.agent)
    gateway = None
    if network == "gateway":
        from .gateway.server import shared_gateway

        gateway = shared_gateway(job.settings.prices, job.settings.gateway_timeout_s)
    spec = SandboxSpec(task, job.entry.path, repo, workspace, job.settings, say, tools, network, gateway)
    return repo, spec, job.sandbox_factory(spec)


def _run_stages(job: Job, outcome: Outcome, say: Progress) -> None:
    task = job.task
    repo, spec, sandbox = _prepare(job, say)
    try:
        patch, agent_run = _solve(job, sandbox, spec, repo, say)
        _judge(job, repo, patch, outcome, say)
        outcome.timed_out = agent_run.timed_out
        outcome.agent_run = {
            "returncode": agent_run.returncode,
            "timed_out": agent_run.timed_out,
            "duration_s": round(agent_run.duration_s, 3),
            **agent_run.info,
        }
        outcome.patch = patch_stats(redact(patch))  # the stored copy's figures
        if leaked := contains_secret(patch):
            outcome.patch["embeds_secret"] = leaked  # names only: the patch carried a key's value
        outcome.touches_benchmark = BenchmarkFiles(task, repo).touched(patch)
        if (destroyed := agent_run.info.get("workdir_destroyed")) is not None:
            verdict = agent_failed(task, destroyed["reason"])
        elif agent_run.info.get("stop_reason") == DISK_LIMIT:  # its patch was discarded, unmeasured
            verdict = agent_failed(task, DISK_LIMIT)
        else:
            verdict = _measure(job, sandbox, patch, outcome, say)
            outcome.measured["benchmark_files_restored"] = getattr(sandbox, "benchmark_changes", {})
    finally:
        sandbox.close()
    outcome.hard = verdict.verdict
    outcome.hard_pct = None if verdict.pct is None else round(verdict.pct, 2)
    outcome.hard_metric = verdict.metric
    outcome.hard_reason = verdict.reason
    outcome.inconclusive = verdict.inconclusive
    outcome.hard_detail = verdict.model_dump(mode="json")
    outcome.quadrant = quadrant(outcome.hard, outcome.bottleneck)


def _rejudge(job: Job, outcome: Outcome, say: Progress) -> Outcome:
    """Judge a recorded outcome again; trouble leaves it as recorded, with the reason."""
    try:
        patch = (job.artifacts / "patch.diff").read_text(encoding="utf-8", errors="surrogateescape")
        repo = materialise(
            job.task,
            job.entry.path,
            job.settings.cache_dir / "repos",
            timeout_s=job.settings.clone_timeout_s,
            progress=say,
        )
        _judge(job, repo, patch, outcome, say)
    except (RepoError, GitError, OSError) as exc:
        outcome.soft = {**outcome.soft, "error": f"could not judge again: {type(exc).__name__}: {exc}"}
    return _record(job, outcome)


def _needs_judging(job: Job, outcome: Outcome) -> bool:
    """A resumed outcome is judged again when the judges changed or none of them answered last time."""
    if not job.settings.judges:
        return False
    return outcome.soft.get("specs") != list(job.settings.judges) or outcome.soft.get("right_target") is None


def _judge(job: Job, repo: Path, patch: str, outcome: Outcome, say: Progress) -> None:
    """Soft verdicts: never raises for judge trouble (the task then stays ``unscored``, with the reason)."""
    specs = job.settings.judges
    if not specs:
        return
    from .judge import JudgeInput, run_judges
    from .sandbox.local import checkout_tree

    say(f"judging with {', '.join(specs)}")
    job.settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=job.settings.work_dir, prefix="judge-") as scratch:
        base_tree = Path(scratch) / "base"
        checkout_tree(repo, job.task.base_commit, base_tree)
        judge_input = JudgeInput(
            task_id=job.task.id,
            description=job.task.description,
            human_patch=redact(oracle_patch(repo, job.task)),
            agent_patch=redact(patch),  # what a judge API is sent: never a key the agent wrote down
            base_tree=base_tree,
        )
        # The A/B order depends on the task (and, inside run_judges, the judge), not on the run:
        # a rerun then asks the same prompt and the verdict cache answers it.
        seed = int(hashlib.sha256(f"{job.task.id}/judge".encode()).hexdigest()[:8], 16)
        report = run_judges(
            specs,
            judge_input,
            cache_dir=job.settings.cache_dir,
            seed=seed,
            prices=job.settings.prices,
            extra_judges=job.extra_judges,
            timeout_s=job.settings.judge_timeout_s,
            max_retries=job.settings.judge_retries,
        )
    soft = redact_data({"specs": list(specs), "votes": report.votes, **report.to_wire()})
    write_json(job.artifacts / "judge.json", soft)
    outcome.soft = soft
    outcome.bottleneck = report.bottleneck
    outcome.approach = report.approach
    outcome.quadrant = quadrant(outcome.hard, outcome.bottleneck)


def oracle_patch(repo: Path, task: Task) -> str:
    """The human change as a binary-safe diff (base..human), from the harness-side repository."""
    return git(
        "--git-dir",
        str(repo),
        "diff",
        "--binary",
        "--full-index",
        "--no-renames",
        task.base_commit,
        task.human_commit,
        cwd=repo,
    ).stdout


def _solve(job: Job, sandbox: Sandbox, spec: SandboxSpec, repo: Path, say: Progress) -> tuple[str, AgentRun]:
    """Run the agent (or reuse its finished attempt) and return the harness-computed patch."""
    art = job.artifacts
    art.mkdir(parents=True, exist_ok=True)
    patch_file, agent_file = art / "patch.diff", art / "agent.json"
    if patch_file.is_file() and agent_file.is_file():
        say("resumed: the agent's patch is already recorded")
        data = json.loads(agent_file.read_text(encoding="utf-8"))
        return patch_file.read_text(encoding="utf-8", errors="surrogateescape"), AgentRun(**data)
    say("creating the agent's working copy")
    workdir = sandbox.agent_workdir()
    prompt = render_prompt(job.task, workdir, job.settings.hints)
    prompt_file = art / "prompt.txt"
    prompt_file.write_text(prompt, encoding="utf-8")
    ctx = SolveContext(
        task=job.task,
        workdir=workdir,
        prompt=prompt,
        prompt_file=prompt_file,
        time_budget_s=job.settings.time_budget_s,
        log_dir=art,
        sandbox=sandbox,
        oracle_patch=lambda: oracle_patch(repo, job.task),
        disk_limit_bytes=job.settings.agent_disk_bytes,
        tools=dict(getattr(sandbox, "tool_paths", {})),
        model_access=_model_access(job, sandbox, spec),
    )
    say(f"agent {job.agent_spec} at work (budget {job.settings.time_budget_min:g} min)")
    ledger = ctx.model_access.ledger if ctx.model_access is not None else None
    try:
        agent_run = job.agent.solve(ctx)
    finally:
        if ledger is not None:
            ledger.revoke()
    if ledger is not None:
        if "gateway" not in agent_run.info:  # CLI agents account for themselves
            account(agent_run.info, ledger)
        if not ledger.gateway_alive():
            raise SandboxError(f"{job.agent_spec}: the model gateway stopped during the attempt")
        if ledger.fault:  # the provider refused the harness's credentials: not the agent's doing
            raise SandboxError(f"{job.agent_spec}: {ledger.fault}")
    try:
        patch = agent_run.patch if agent_run.patch is not None else sandbox.extract_patch()
    except WorkdirDestroyed as exc:  # the agent's doing: its failure, not the harness's
        patch, agent_run.info["workdir_destroyed"] = "", {"reason": exc.reason, "detail": str(exc)}
    # The agent's own patch is measured; the stored (and judged) copy never holds a key.
    patch_file.write_text(redact(patch), encoding="utf-8", errors="surrogateescape")
    redact_tree(art)  # the agent's logs, before anything else runs
    write_json(
        agent_file,
        redact_data(
            {
                "returncode": agent_run.returncode,
                "timed_out": agent_run.timed_out,
                "duration_s": agent_run.duration_s,
                "info": agent_run.info,
            }
        ),
    )
    return patch, AgentRun(
        agent_run.returncode, agent_run.timed_out, agent_run.duration_s, None, agent_run.info
    )


def _model_access(job: Job, sandbox: Sandbox, spec: SandboxSpec) -> ModelAccess | None:
    """How this attempt's agent reaches its model: a gateway account, the opt-out's keys, or nothing."""
    if spec.agent_network == "bridge":
        return direct_access()
    if spec.agent_network != "gateway" or spec.gateway is None:
        return None
    settings = job.settings
    ledger = spec.gateway.open(
        f"{job.task.id}/{job.agent_spec}",
        job.artifacts,
        budget_usd=settings.agent_budget_usd,
        max_tokens=settings.agent_max_tokens,
    )
    try:
        endpoint = getattr(sandbox, "model_endpoint", None)
        if endpoint is None:
            raise SandboxError(
                f"the {settings.backend} backend cannot reach the model gateway (its sandbox has no"
                " model_endpoint()); use --isobench-agent-network=bridge or none"
            )
        return gateway_access(endpoint(), ledger)
    except BaseException:
        ledger.revoke()
        raise


@contextlib.contextmanager
def measurement_lock(settings: Settings) -> Iterator[None]:
    """With ``--isobench-measure-lock=host`` only one measurement runs on this host at a time."""
    if settings.measure_lock != "host":
        yield
        return
    with file_lock(settings.cache_dir / "measure.lock"):
        yield


def _measure(job: Job, sandbox: Sandbox, patch: str, outcome: Outcome, say: Progress) -> HardVerdict:
    """Measure agent, human and baseline in interleaved rounds and judge the agent.

    The human is always measured fresh, side by side with the agent (a cached human only says how
    the fresh one compares). A cached baseline is reused after a drift check: ``DRIFT_ROUNDS`` fresh
    baseline rounds compared with the cached ones; when they differ it is measured in full again and
    the entry replaced. ``outcome.measured["sources"]`` says which. A failing baseline or human stops
    the task at once (an infrastructure error naming the variant).
    """
    task, settings = job.task, job.settings
    bench = with_dataset_dir(task.benchmark, settings.dataset_dir)
    assert bench.metric is not None
    metric = bench.metric
    cache = MeasurementCache(settings.cache_dir)
    keys = {
        v: measurement_key(task, v, warmup=settings.warmup, backend=sandbox.name) for v in REFERENCE_VARIANTS
    }
    cached: dict[str, CacheEntry] = {}
    warnings: list[str] = []
    if not settings.remeasure:
        for variant, key in keys.items():
            entry, problem = cache.load(task, variant, key)
            if problem is not None:
                log.warning("%s: %s", task.id, problem)
                warnings.append(problem)
            if entry is not None:
                cached[variant] = entry
    trees: dict[str, Path] = {}
    failure: str | None = None
    try:
        trees["agent"] = sandbox.variant_tree("agent", patch)
    except PatchDoesNotApply as exc:
        failure = "patch_does_not_apply"
        outcome.measured["patch_error"] = str(exc)
    for variant in REFERENCE_VARIANTS:
        trees[variant] = sandbox.variant_tree(variant)
    policy = RoundPolicy(
        metric=metric,
        lower_is_better=bench.lower_is_better,
        band=BAND_PCT,
        fixed=None if settings.rounds_auto else settings.rounds,
        min_rounds=settings.min_rounds,
        max_rounds=max(settings.max_rounds, settings.min_rounds),
    )
    drift: dict[str, Any] = {}
    if "baseline" in cached:
        reference = primary_values(cached["baseline"].runs, metric)
        policy.baseline_rounds = DRIFT_ROUNDS

        def check(fresh: list[float]) -> bool:
            drift.update(drift_check(fresh, reference, lower_is_better=bench.lower_is_better))
            return bool(drift["drifted"])

        policy.drift_check = check
    rounds_text = settings.rounds_text
    say(f"measuring {', '.join(sorted(trees))}: {settings.warmup} warm-up + {rounds_text} rounds")
    seed = int(hashlib.sha256(f"{job.run_id}/{task.id}".encode()).hexdigest()[:8], 16)
    with measurement_lock(settings):
        result = measure(
            sandbox,
            bench,
            trees,
            job.artifacts / "bench",
            policy=policy,
            warmup=settings.warmup,
            seed=seed,
            progress=say,
        )
    fresh = result.runs
    outcome.measured["schedule"] = result.schedule
    outcome.measured["rounds_mode"] = rounds_text
    if result.stopped_by is not None:
        stop = result.stopped_by
        outcome.measured["runs"] = {v: [r.to_json() for r in rs] for v, rs in sorted(fresh.items())}
        raise SandboxError(
            f"the {stop.variant} variant failed ({stop.status}): {stop.detail}; the task stopped at once"
        )
    runs: dict[str, list[BenchRun]] = dict(fresh)
    sources: dict[str, Any] = {"agent": {"source": "fresh"}}
    sources["human"] = {"source": "fresh"}
    if "human" in cached:  # the cache only seeds: how the fresh human compares with the cached one
        sources["human"]["cache_compare"] = drift_check(
            primary_values(fresh["human"], metric),
            primary_values(cached["human"].runs, metric),
            lower_is_better=bench.lower_is_better,
        )
    if "baseline" in cached and not policy.drifted:
        runs["baseline"] = cached["baseline"].runs
        checked = drift or {"drifted": None, "reason": "the measurement ended before the drift check"}
        fresh_runs = len(fresh["baseline"])
        sources["baseline"] = {"source": "cache", "drift_check": checked, "fresh_runs": fresh_runs}
        outcome.measured["drift_runs"] = [r.to_json() for r in fresh["baseline"]]
    else:
        sources["baseline"] = {"source": "fresh"}
        if drift:
            sources["baseline"]["drift_check"] = drift
    run_info = {"run_id": job.run_id, "backend": sandbox.name, "image": getattr(sandbox, "image", None)}
    for variant in REFERENCE_VARIANTS:
        # Only a complete measurement replaces an entry (not one cut short by a failing agent).
        complete = len(primary_values(runs[variant], metric)) >= policy.target
        if sources[variant]["source"] == "fresh" and complete:
            sources[variant]["stored"] = cache.store(task, variant, keys[variant], runs[variant], run_info)
    outcome.measured["sources"] = sources
    outcome.measured["cached"] = sorted(v for v, src in sources.items() if src["source"] == "cache")
    outcome.measured["runs"] = {v: [r.to_json() for r in rs] for v, rs in sorted(runs.items())}
    outcome.measured["metrics"] = {v: _median_metrics(rs) for v, rs in sorted(runs.items())}
    outcome.measured["noise"] = {v: _noise(rs, metric) for v, rs in sorted(runs.items())}
    outcome.measured["retried"] = sum(1 for rs in fresh.values() for r in rs if r.retried)
    loaded = [r for rs in fresh.values() for r in rs if r.host.get("loaded")]
    if loaded:
        total = sum(len(rs) for rs in fresh.values())
        example = loaded[0].host["loaded"]
        warning = f"host loaded during {len(loaded)} of {total} benchmark runs, e.g. {example}"
        log.warning("%s: %s", task.id, warning)
        warnings.append(warning)
    outcome.measured["warnings"] = warnings
    if failure is None and (bad := first_failure(runs.get("agent", []))) is not None:
        failure = FAILURE_REASON[bad.status]
        outcome.measured["agent_failure"] = bad.detail
    if failure is None and (workload := check_workload(runs)) is not None:
        outcome.measured["workload"] = workload.to_json()
        failure = "workload_changed" if workload.changed else None
    values = {v: primary_values(rs, metric) for v, rs in runs.items()}
    verdict = hard_verdict(metric, values, lower_is_better=bench.lower_is_better, failure=failure)
    say(f"hard verdict: {describe(verdict)}")
    if task.correctness:
        detail = _correctness(job, sandbox, trees, verdict, say)
        outcome.correctness, outcome.correctness_detail = detail["status"], detail
    return verdict


def _correctness(
    job: Job, sandbox: Sandbox, trees: dict[str, Path], verdict: HardVerdict, say: Progress
) -> dict[str, Any]:
    """The task's correctness checks, for the patches ``--isobench-correctness`` selects."""
    mode = job.settings.correctness
    if mode == "off":
        detail: dict[str, Any] = {"status": "not_run", "reason": "--isobench-correctness=off"}
    elif mode == "passing" and not is_hard_pass(verdict.verdict):
        reason = "the patch did not pass the hard gate (--isobench-correctness=all checks every patch)"
        detail = {"status": "not_run", "reason": reason}
    else:
        say("checking correctness")
        from .correctness import check_correctness, check_registry

        with measurement_lock(job.settings):  # its servers would disturb another worker's measurement
            detail = check_correctness(
                sandbox,
                job.task,
                trees,
                job.artifacts / "correctness",
                job.settings,
                checks=check_registry([job.extra_checks]),
                progress=say,
            )
    detail["mode"] = mode
    detail["gate"] = job.settings.correctness_gate
    return detail


def drift_check(fresh: list[float], reference: list[float], *, lower_is_better: bool) -> dict[str, Any]:
    """Fresh rounds against cached ones: drifted when the interval of fresh/cached excludes 0 %.

    Without an interval (fewer than 3 values on a side, or identical values) a shift of more than
    ``DRIFT_TOLERANCE_PCT`` counts as drift.
    """
    from .measure import stats

    if not fresh or not reference or any(v <= 0 for v in (*fresh, *reference)):
        return {"drifted": True, "reason": "no usable values to compare"}
    estimate = stats.hodges_lehmann_ratio(fresh, reference)
    pct = estimate.percent(lower_is_better=lower_is_better)
    interval = estimate.percent_interval(lower_is_better=lower_is_better)
    if interval is not None:
        drifted = not interval[0] <= 0.0 <= interval[1]
    else:  # too few values for an interval, or no noise at all: a shift beyond the tolerance counts
        drifted = abs(pct) > DRIFT_TOLERANCE_PCT
    return {
        "drifted": drifted,
        "pct": round(pct, 2),
        "ci_pct": None if interval is None else [round(interval[0], 2), round(interval[1], 2)],
        "fresh_rounds": len(fresh),
        "cached_rounds": len(reference),
    }


def _noise(runs: list[BenchRun], metric: str) -> dict[str, Any]:
    """Rounds used and coefficient of variation of the primary metric of one variant."""
    from .measure.stats import spread

    values = primary_values(runs, metric)
    return {
        "rounds": len(values),
        "cv_pct": round(spread(values)["cv_pct"], 2) if values else None,
        "retried": sum(1 for r in runs if r.retried),
    }


def agent_failed(task: Task, reason: str) -> HardVerdict:
    """The verdict of an agent that left nothing to measure (e.g. it destroyed its working copy)."""
    bench = task.benchmark
    assert bench.metric is not None
    return hard_verdict(bench.metric, {}, lower_is_better=bench.lower_is_better, failure=reason)


def _median_metrics(runs: list[BenchRun]) -> dict[str, float]:
    """The median of every parsed metric over the measured rounds (all kept, not only the primary)."""
    from .measure.stats import median

    measured = [r.metrics for r in runs if r.round >= 0 and r.status == "ok"]
    names = sorted({name for metrics in measured for name in metrics})
    return {name: median([m[name] for m in measured if name in m]) for name in names}


def patch_stats(patch: str) -> dict[str, Any]:
    """Size of a patch: files, added and removed lines, bytes, and a hash to recognise it.

    The counts come from ``git apply --numstat -z`` (exact for any file name: spaces, quotes,
    non-ASCII); a patch git cannot read is counted from our own diff reader instead.
    """
    files, added, removed = _numstat(patch) if patch.strip() else ([], 0, 0)
    return {
        "files": files,
        "files_changed": len(files),
        "lines_added": added,
        "lines_removed": removed,
        "bytes": len(patch.encode("utf-8", "surrogateescape")),
        "empty": not patch.strip(),
        "sha256": hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest(),
    }


def _numstat(patch: str) -> tuple[list[str], int, int]:
    """(files, lines added, lines removed) of a non-empty patch; binary files count no lines."""
    with tempfile.TemporaryDirectory(prefix="isobench-numstat-") as tmp:
        scratch = Path(tmp)
        patch_file = scratch / "patch.diff"
        patch_file.write_bytes(patch.encode("utf-8", "surrogateescape"))
        # Outside any repository: inside one, git apply would drop paths outside the current folder.
        ceiling = {"GIT_CEILING_DIRECTORIES": str(scratch.parent)}
        result = git("apply", "--numstat", "-z", str(patch_file), cwd=scratch, env=ceiling, check=False)
    if result.returncode != 0:
        from .judge.diffs import parse_diff

        diffs = parse_diff(patch)
        lines = [line.kind for diff in diffs for hunk in diff.hunks for line in hunk.lines]
        return [diff.path for diff in diffs], lines.count("+"), lines.count("-")
    files: list[str] = []
    added = removed = 0
    fields = iter(result.stdout.split("\0"))
    for record in fields:
        if not record:
            continue
        plus, minus, path = record.split("\t", 2)
        if not path:  # a rename or copy: the old path, then the new one, each its own field
            next(fields, "")
            path = next(fields, "")
        files.append(path)
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
    return files, added, removed
