"""``greedy`` checks: the same prompts at temperature 0, with logprobs, to the human and agent servers.

Identical generations pass. Where the tokens diverge, the pair still passes when each side's token
is among the other side's top-k logprobs at the first divergence (a near-tie that numerics may
break either way; the rule vLLM's own model tests use); after it the sequences are not comparable.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..tasks import GreedyCheck
from .base import CheckContext, CheckError, ServerFailed, task_server
from .cache import HumanResultCache, human_key

CLIENT = Path(__file__).resolve().parent / "client.py"
# Short, varied prompts: prose, code, a list, arithmetic, a question, a repetition.
DEFAULT_PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Here is a list of the planets of the solar system, in order from the sun: Mercury,",
    "Question: What is 17 times 23?\nAnswer:",
    "In 1969, the first humans to walk on the moon were",
    "Once upon a time, in a small village at the edge of a forest, there lived",
    "The three primary colors are red, blue and",
    "one two three four five six seven eight nine ten eleven twelve",
)


@dataclass(frozen=True)
class Generation:
    """One greedy completion: its tokens and, per position, the top-k tokens with their logprobs."""

    tokens: list[str]
    top: list[dict[str, float]]
    text: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def request_body(prompt: str, *, max_tokens: int, top_k: int) -> dict[str, Any]:
    """The ``/v1/completions`` body of one greedy generation with logprobs (the model is added later)."""
    return {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "logprobs": top_k,
        "seed": 0,
        "stream": False,
    }


def parse_completion(reply: Any) -> Generation:
    """The generation in an OpenAI completions reply; CheckError when it has no usable logprobs."""
    try:
        choice = reply["choices"][0]
        logprobs = choice["logprobs"]
        tokens, top = logprobs["tokens"], logprobs["top_logprobs"]
        if not isinstance(tokens, list) or not isinstance(top, list):
            raise TypeError("tokens and top_logprobs must be lists")
        return Generation(
            [str(token) for token in tokens],
            [{str(k): float(v) for k, v in (entry or {}).items()} for entry in top],
            str(choice.get("text") or ""),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise CheckError(
            f"the completion has no usable logprobs (choices[0].logprobs.tokens and top_logprobs): {exc!r}"
        ) from None


def ask(
    ctx: CheckContext,
    variant: str,
    base_url: str,
    model: str | None,
    bodies: list[dict[str, Any]],
    timeout_s: float,
) -> Any:
    """Post the bodies to the server from where it runs (``client.py`` through the sandbox); the
    server's replies and the model it served them with."""
    folder = ctx.out_dir / variant
    folder.mkdir(parents=True, exist_ok=True)
    script, job = folder / "client.py", folder / "requests.json"
    shutil.copyfile(CLIENT, script)
    job.write_text(
        json.dumps({"base_url": base_url, "model": model, "timeout_s": timeout_s, "requests": bodies}),
        encoding="utf-8",
    )
    tree = ctx.tree(variant)
    result = ctx.sandbox.run(
        f"python {shlex.quote(str(script))} {shlex.quote(str(job))}",
        cwd=tree,
        env=ctx.sandbox.environment(tree),
        timeout_s=timeout_s * (len(bodies) + 1),
        stdout_path=folder / "responses.json",
        stderr_path=folder / "client.stderr.txt",
    )
    if result.timed_out or result.returncode != 0:
        why = "timed out" if result.timed_out else result.stderr_tail(3) or f"exit code {result.returncode}"
        raise CheckError(f"asking the server failed: {why}")
    try:
        return json.loads(result.stdout())
    except ValueError as exc:
        raise CheckError(f"the client's output is not JSON: {exc}") from None


def first_divergence(human: Generation, agent: Generation) -> int | None:
    """Index of the first token where the two differ (or one ended); None when identical."""
    for index, (want, got) in enumerate(zip(human.tokens, agent.tokens, strict=False)):
        if want != got:
            return index
    if len(human.tokens) != len(agent.tokens):
        return min(len(human.tokens), len(agent.tokens))
    return None


def compare(human: Generation, agent: Generation) -> dict[str, Any]:
    """``match`` (identical), ``near_tie`` (diverged where each token is in the other's top-k) or
    ``mismatch``, with the first divergence."""
    index = first_divergence(human, agent)
    if index is None:
        return {"result": "match", "tokens": len(human.tokens)}
    if index >= len(human.tokens) or index >= len(agent.tokens):
        ended = "human" if index >= len(human.tokens) else "agent"
        return {
            "result": "mismatch",
            "position": index,
            "why": f"the {ended} generation ended after {index} tokens, the other went on",
        }
    want, got = human.tokens[index], agent.tokens[index]
    human_top = human.top[index] if index < len(human.top) else {}
    agent_top = agent.top[index] if index < len(agent.top) else {}
    near_tie = got in human_top and want in agent_top
    found: dict[str, Any] = {
        "result": "near_tie" if near_tie else "mismatch",
        "position": index,
        "human_token": want,
        "agent_token": got,
        "human_top": human_top,
        "agent_top": agent_top,
    }
    if not near_tie:
        found["why"] = f"token {index}: human {want!r}, agent {got!r}, not each in the other's top-k"
    return found


class GreedyEquivalence:
    """Human and agent servers must generate the same greedy tokens, up to top-k near-ties."""

    kind = "greedy"

    def run(self, config: BaseModel, ctx: CheckContext) -> dict[str, Any]:
        assert isinstance(config, GreedyCheck)
        prompts = list(config.prompts or DEFAULT_PROMPTS)
        cache = HumanResultCache(ctx.settings.cache_dir)
        key = human_key(ctx.task, config.model_copy(update={"prompts": prompts}), backend=ctx.sandbox.name)
        cached, problem = (None, None) if ctx.settings.remeasure else cache.load(ctx.task, self.kind, key)
        notes = [problem] if problem else []
        if cached is not None:
            human = [Generation(**g) for g in cached]
            human_source = "cache"
        else:
            human = self._generate(ctx, config, "human", prompts)
            cache.store(ctx.task, self.kind, key, [g.to_json() for g in human], {"backend": ctx.sandbox.name})
            human_source = "fresh"
        agent = self._generate(ctx, config, "agent", prompts)
        items = []
        for prompt, want, got in zip(prompts, human, agent, strict=True):
            items.append(
                {"prompt": prompt, **compare(want, got), "human_text": want.text, "agent_text": got.text}
            )
        _write(ctx, items)
        matches = sum(1 for item in items if item["result"] == "match")
        near_ties = sum(1 for item in items if item["result"] == "near_tie")
        mismatched = [item for item in items if item["result"] == "mismatch"]
        result: dict[str, Any] = {
            "status": "fail" if mismatched else "pass",
            "kind": self.kind,
            "prompts": len(prompts),
            "match_rate": round(matches / len(prompts), 4),
            "matches": matches,
            "near_ties": near_ties,
            "mismatches": len(mismatched),
            "human_source": human_source,
            "top_k": config.top_k,
            "max_tokens": config.max_tokens,
        }
        diverged = [item for item in items if item["result"] != "match"]
        if diverged:
            first = diverged[0]
            result["first_divergence"] = {
                key: first[key]
                for key in ("prompt", "result", "position", "human_token", "agent_token", "why")
                if key in first
            }
        if mismatched:
            result["reason"] = (
                f"{len(mismatched)} of {len(prompts)} greedy generations differ; first: prompt"
                f" {mismatched[0]['prompt'][:40]!r}, {mismatched[0]['why']}"
            )
        if notes:
            result["notes"] = notes
        return result

    def _generate(
        self, ctx: CheckContext, config: GreedyCheck, variant: str, prompts: list[str]
    ) -> list[Generation]:
        ctx.progress(f"correctness: greedy generations of the {variant} server")
        bodies = [request_body(p, max_tokens=config.max_tokens, top_k=config.top_k) for p in prompts]
        with task_server(ctx, variant) as base_url:
            try:
                reply = ask(
                    ctx, variant, base_url, config.model or ctx.task.benchmark.model, bodies, config.timeout_s
                )
                return [parse_completion(response) for response in reply["responses"]]
            except (CheckError, KeyError, TypeError) as exc:
                if variant == "agent":  # the human's server answered the same requests: the agent broke it
                    raise ServerFailed(variant, f"gave no usable completion: {exc}") from None
                raise CheckError(f"the human server: {exc}") from None


def _write(ctx: CheckContext, items: list[dict[str, Any]]) -> None:
    (ctx.out_dir / "generations.json").write_text(json.dumps(items, indent=2) + "\n", encoding="utf-8")
