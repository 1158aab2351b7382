"""The model judges: the real anthropic and openai clients against a fake API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from fake_llm_server import (  # noqa: F401
    CHAT,
    MESSAGES,
    FakeLLM,
    SilentServer,
    fake_llm_fixture,
    silent_server_fixture,
)
from pytest_isobench.judge import JudgeInput, SoftVerdict, run_judges
from pytest_isobench.judge.anthropic_judge import AnthropicJudge
from pytest_isobench.judge.llm import ModelJudge, Reply
from pytest_isobench.judge.openai_judge import OpenAIJudge
from pytest_isobench.judge.prompt import TOOL_NAME, draw_order
from pytest_isobench.scoring import quadrant

ANTHROPIC_KEY = "sk-ant-api03-TESTSECRET-aaaaaaaaaaaaaaaaaaaa"
OPENAI_KEY = "sk-proj-TESTSECRET-bbbbbbbbbbbbbbbbbbbb"
CLAUDE = "anthropic:claude-sonnet-4-6"
GPT = "openai:gpt-4.1"
HUMAN_PATCH = """\
diff --git a/work.py b/work.py
--- a/work.py
+++ b/work.py
@@ -3,4 +3,4 @@
-DELAY = 0.06
+DELAY = 0.02
"""
AGENT_PATCH = HUMAN_PATCH.replace("0.02", "0.03")


def answer(category: str = "same_target", **overrides: Any) -> dict[str, Any]:
    """A valid answer naming the patches by label, so the mapping back can be checked."""
    data: dict[str, Any] = {
        "bottleneck_target": {
            "category": category,
            "patch_a_target": "target of A",
            "patch_b_target": "target of B",
            "rationale": "both lower the delay",
        },
        "approach_comparison": {"category": "similar_approach", "rationale": "same constant"},
        "techniques": {"patch_a": ["tuning_a"], "patch_b": ["tuning_b"]},
        "failure_mode": "not_applicable",
    }
    data.update(overrides)
    return data


@pytest.fixture
def env(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> FakeLLM:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.anthropic_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return fake_llm


def anthropic_key_header(headers: dict[str, str]) -> str:
    """The key as sent: ``x-api-key`` (older SDKs) or a bearer token (anthropic 2.x)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def task(agent_patch: str = AGENT_PATCH, task_id: str = "toy-0001") -> JudgeInput:
    return JudgeInput(
        task_id=task_id,
        description="Each step waits too long.",
        human_patch=HUMAN_PATCH,
        agent_patch=agent_patch,
    )


def run(spec: str, tmp_path: Path, judge_input: JudgeInput | None = None, **kw: Any) -> SoftVerdict:
    report = run_judges([spec], judge_input or task(), cache_dir=tmp_path / "cache", **kw)
    assert len(report.verdicts) == 1
    return report.verdicts[0]


def test_anthropic_good_answer_forces_the_tool(env: FakeLLM, tmp_path: Path) -> None:
    env.anthropic_answer(answer("related_target"), input_tokens=1000, output_tokens=200)
    verdict = run(CLAUDE, tmp_path)
    assert verdict.status == "ok", verdict.error
    assert verdict.bottleneck_target is not None and verdict.bottleneck_target.category == "related_target"
    assert verdict.right_target is True
    assert verdict.approach_comparison is not None
    assert verdict.approach_comparison.category == "similar_approach"
    assert verdict.failure_mode == "not_applicable"
    assert verdict.order == draw_order(0, CLAUDE, "toy-0001")
    assert verdict.usage.input_tokens == 1000 and verdict.usage.output_tokens == 200
    assert verdict.usage.cost_usd == pytest.approx((1000 * 3.0 + 200 * 15.0) / 1e6)
    [request] = env.requests(MESSAGES)
    assert anthropic_key_header(request.headers) == ANTHROPIC_KEY
    assert request.body["model"] == "claude-sonnet-4-6"
    assert request.body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert request.body["tools"][0]["input_schema"]["required"] == [
        "bottleneck_target",
        "approach_comparison",
        "techniques",
        "failure_mode",
    ]
    prompt = request.body["messages"][0]["content"]
    assert "Patch A" in prompt and "Patch B" in prompt and "Each step waits too long." in prompt


@pytest.mark.parametrize("seed_for", ["human_first", "agent_first"])
def test_labels_are_mapped_back_to_human_and_agent(env: FakeLLM, tmp_path: Path, seed_for: str) -> None:
    seed = next(s for s in range(100) if draw_order(s, GPT, "toy-0001") == seed_for)
    env.openai_answer(json.dumps(answer()))
    verdict = run(GPT, tmp_path, seed=seed)
    assert verdict.status == "ok", verdict.error
    assert verdict.order == seed_for
    human_label, agent_label = ("A", "B") if seed_for == "human_first" else ("B", "A")
    assert verdict.bottleneck_target is not None
    assert verdict.bottleneck_target.human_target == f"target of {human_label}"
    assert verdict.bottleneck_target.agent_target == f"target of {agent_label}"
    assert verdict.techniques is not None and verdict.techniques.human == (f"tuning_{human_label.lower()}",)
    prompt = env.requests(CHAT)[0].body["messages"][1]["content"]
    assert f"The reference patch (merged upstream) is Patch {human_label}." in prompt
    first_patch = prompt[prompt.index("# Patch A") : prompt.index("# Patch B")]
    assert ("0.02" in first_patch) == (seed_for == "human_first")


class WarningAnthropicJudge(AnthropicJudge):
    """The real judge, with a warning of our own raised in the middle of the SDK call (as an SDK
    version does for a deprecated model id): which models an SDK warns about changes between versions."""

    def _ask(self, client: Any, messages: list[dict[str, Any]]) -> Reply:
        warnings.warn(f"The model '{self.model}' is deprecated", DeprecationWarning, stacklevel=2)
        return super()._ask(client, messages)


def test_sdk_warnings_are_recorded_not_raised(env: FakeLLM, tmp_path: Path) -> None:
    env.anthropic_answer(answer())
    warning_judge = {"anthropic": lambda model: WarningAnthropicJudge(model or "")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under -W error: a warning that escaped would raise here
        verdict = run(CLAUDE, tmp_path, extra_judges=warning_judge)
    assert verdict.status == "ok", verdict.error
    assert verdict.warnings == ("DeprecationWarning: The model 'claude-sonnet-4-6' is deprecated",)
    assert len(env.requests(MESSAGES)) == 1, "the call went through the SDK"
    cached = run(CLAUDE, tmp_path, extra_judges=warning_judge)
    assert cached.cached is True and cached.warnings == verdict.warnings, "kept with the verdict"


def test_openai_good_answer_uses_a_strict_json_schema(env: FakeLLM, tmp_path: Path) -> None:
    env.openai_answer(json.dumps(answer("different_target")), prompt_tokens=1_000_000, completion_tokens=0)
    verdict = run(GPT, tmp_path)
    assert verdict.status == "ok", verdict.error
    assert verdict.right_target is False
    assert verdict.usage.cost_usd == pytest.approx(2.0)
    [request] = env.requests(CHAT)
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert request.body["temperature"] == 0
    assert request.body["messages"][0]["role"] == "system"


def test_anthropic_malformed_answer_is_repaired_once(env: FakeLLM, tmp_path: Path) -> None:
    env.anthropic_answer(answer("bogus_target"))
    env.anthropic_answer(answer("same_target"))
    verdict = run(CLAUDE, tmp_path)
    assert verdict.status == "ok", verdict.error
    assert verdict.usage.calls == 2
    first, second = env.requests(MESSAGES)
    assert len(second.body["messages"]) == 3
    assert second.body["messages"][1]["content"][0]["type"] == "tool_use"
    result = second.body["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert "bottleneck_target.category" in result["content"]
    assert second.body["tool_choice"] == first.body["tool_choice"]


def test_openai_answer_still_invalid_after_repair_is_a_judge_error(env: FakeLLM, tmp_path: Path) -> None:
    env.openai_answer("this is not JSON")
    env.openai_answer(json.dumps({"bottleneck_target": {"category": "same_target"}}))
    report = run_judges([GPT], task(), cache_dir=tmp_path)
    [verdict] = report.verdicts
    assert verdict.status == "judge_error"
    assert verdict.error is not None and "invalid answer after one repair request" in verdict.error
    assert verdict.usage.calls == 2 and verdict.usage.input_tokens == 1800
    assert len(env.requests(CHAT)) == 2
    assert env.requests(CHAT)[1].body["messages"][2]["content"] == "this is not JSON"
    assert report.right_target is None and report.error is not None and GPT in report.error
    assert not list(tmp_path.rglob("*.json")), "errors are not cached"


@pytest.mark.parametrize(("spec", "path"), [(CLAUDE, MESSAGES), (GPT, CHAT)])
def test_rate_limit_is_retried(env: FakeLLM, tmp_path: Path, spec: str, path: str) -> None:
    env.error(path, 429, "slow down")
    if path == MESSAGES:
        env.anthropic_answer(answer())
    else:
        env.openai_answer(json.dumps(answer()))
    verdict = run(spec, tmp_path)
    assert verdict.status == "ok", verdict.error
    assert len(env.requests(path)) == 2


@pytest.mark.parametrize(("spec", "path"), [(CLAUDE, MESSAGES), (GPT, CHAT)])
def test_server_errors_until_giving_up_leave_the_task_unscored(
    env: FakeLLM, tmp_path: Path, spec: str, path: str
) -> None:
    for _ in range(3):  # the first try and the default two retries
        env.error(path, 500, "boom")
    report = run_judges([spec], task(), cache_dir=tmp_path)
    assert len(env.requests(path)) == 3
    [verdict] = report.verdicts
    assert verdict.status == "judge_error"
    assert verdict.error is not None and "HTTP 500 after 2 retries" in verdict.error
    assert report.right_target is None and report.bottleneck is None
    assert quadrant("beats", report.bottleneck) == "unscored"


def test_timeouts_are_retried_then_reported(env: FakeLLM, tmp_path: Path) -> None:
    # The answers come far later than the limit: a loaded machine cannot make them arrive in time.
    env.queue(CHAT, body={}, delay_s=20.0)
    env.queue(CHAT, body={}, delay_s=20.0)
    quick = {"openai": lambda model: OpenAIJudge(model or "", timeout_s=1.5, max_retries=1)}
    verdict = run(GPT, tmp_path, extra_judges=quick)
    assert verdict.status == "judge_error"
    assert verdict.error is not None and "timed out" in verdict.error
    assert len(env.requests(CHAT)) == 2


@pytest.mark.parametrize("spec", [CLAUDE, GPT])
def test_an_endpoint_that_never_answers_costs_the_timeout_per_attempt(
    silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", silent_server.root)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{silent_server.root}/v1")
    report = run_judges([spec], task(), cache_dir=tmp_path, timeout_s=1.5, max_retries=1)
    [verdict] = report.verdicts
    assert verdict.status == "judge_error"
    prefix = spec.split(":")[0]
    assert verdict.error == f"{prefix} API timed out (1.5 s per attempt, 1 retries)"
    assert silent_server.accepted == 2, "the first attempt and one retry, each on a fresh connection"
    assert report.right_target is None


def test_the_default_judge_limits_reach_the_sdk_clients() -> None:
    from pytest_isobench.judge import builtin_judges

    factories = builtin_judges()
    for spec in ("anthropic", "openai"):
        judge = factories[spec]("some-model")
        assert isinstance(judge, ModelJudge)
        assert (judge.timeout_s, judge.max_retries) == (60.0, 2)
        with judge._client("k", "http://127.0.0.1:9") as client:
            assert client.max_retries == 2
            assert float(getattr(client.timeout, "read", client.timeout)) == 60.0


def test_a_rejected_temperature_is_dropped(env: FakeLLM, tmp_path: Path) -> None:
    env.error(CHAT, 400, "Unsupported value: 'temperature' does not support 0 with this model.")
    env.openai_answer(json.dumps(answer()))
    verdict = run(GPT, tmp_path)
    assert verdict.status == "ok", verdict.error
    first, second = env.requests(CHAT)
    assert first.body["temperature"] == 0 and "temperature" not in second.body


@pytest.mark.parametrize(("spec", "variable"), [(CLAUDE, "ANTHROPIC_API_KEY"), (GPT, "OPENAI_API_KEY")])
def test_missing_key_is_a_judge_error_naming_the_variable(
    env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, variable: str
) -> None:
    monkeypatch.delenv(variable)
    verdict = run(spec, tmp_path)
    assert verdict.status == "judge_error"
    assert verdict.error is not None and variable in verdict.error
    assert env.requests() == []


def test_empty_agent_patch_is_no_optimization_without_a_call(env: FakeLLM, tmp_path: Path) -> None:
    report = run_judges([CLAUDE, GPT, "overlap"], task(agent_patch="  \n"), cache_dir=tmp_path)
    assert [v.bottleneck_target.category for v in report.verdicts if v.bottleneck_target] == [
        "no_optimization"
    ] * 3
    assert report.right_target is False and report.bottleneck == "no_optimization"
    assert quadrant("worse", report.bottleneck) == "Q4"
    assert env.requests() == []


def test_cache_hit_makes_no_request(env: FakeLLM, tmp_path: Path) -> None:
    env.anthropic_answer(answer(), input_tokens=1000, output_tokens=100)
    first = run_judges([CLAUDE], task(), cache_dir=tmp_path)
    assert first.verdicts[0].cached is False and first.input_tokens == 1000 and first.cost_usd > 0
    assert len(list((tmp_path / "judge").rglob("*.json"))) == 1
    again = run_judges([CLAUDE], task(), cache_dir=tmp_path)
    assert len(env.requests(MESSAGES)) == 1
    [verdict] = again.verdicts
    assert verdict.cached is True and verdict.status == "ok"
    assert verdict.usage.input_tokens == 1000, "the original call's usage is kept"
    assert verdict.usage.cost_usd == first.verdicts[0].usage.cost_usd == first.cost_usd
    assert again.cost_usd == 0.0 and again.input_tokens == 0, "nothing was spent in the rerun"
    assert again.bottleneck == first.bottleneck == "same_target"
    # a different agent patch is a different question
    env.anthropic_answer(answer("different_target"))
    other = run_judges([CLAUDE], task(agent_patch=AGENT_PATCH + "\n"), cache_dir=tmp_path)
    assert other.verdicts[0].cached is False and other.bottleneck == "different_target"
    assert len(env.requests(MESSAGES)) == 2


def test_api_keys_never_reach_verdicts_cache_errors_or_logs(
    env: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # an endpoint that echoes the key in its error, and a model that echoes it in its rationale
    env.error(MESSAGES, 401, f"invalid x-api-key {ANTHROPIC_KEY}")
    leaky = answer()
    leaky["bottleneck_target"]["rationale"] = f"the key is {OPENAI_KEY}"
    env.openai_answer(json.dumps(leaky))
    report = run_judges([CLAUDE, GPT], task(), cache_dir=tmp_path / "cache")
    claude, gpt = report.verdicts
    assert anthropic_key_header(env.requests(MESSAGES)[0].headers) == ANTHROPIC_KEY, "the key was sent"
    assert claude.status == "judge_error" and claude.error is not None and "HTTP 401" in claude.error
    assert "[redacted ANTHROPIC_API_KEY]" in claude.error
    assert gpt.status == "ok" and gpt.bottleneck_target is not None
    assert "[redacted OPENAI_API_KEY]" in gpt.bottleneck_target.rationale
    (tmp_path / "judge.json").write_text(json.dumps(report.to_wire()))
    written = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "bottleneck_target" in written, "the cache entry and the report were written"
    for secret in (ANTHROPIC_KEY, OPENAI_KEY, "TESTSECRET"):
        assert secret not in written
        assert secret not in report.model_dump_json()
        assert secret not in caplog.text
