"""Judge specs, the majority decision, quadrants, agreement, trimming, order and prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_isobench.judge import (
    ApproachComparison,
    BottleneckTarget,
    JudgeContext,
    JudgeFactory,
    JudgeInput,
    JudgeReport,
    SoftVerdict,
    agreement,
    judge_registry,
    parse_judge_specs,
    run_judges,
)
from pytest_isobench.judge.prompt import TRIM_MARKER, build_prompt, draw_order, trim_patch
from pytest_isobench.pricing import cost_usd, load_prices, price_table
from pytest_isobench.scoring import quadrant

INPUT = JudgeInput(task_id="toy-0001", description="d", human_patch="diff h\n", agent_patch="diff a\n")


class Fixed:
    """A scripted in-process judge: enough for the combining logic, which never sees an SDK."""

    cacheable = False
    prompt_version = 1

    def __init__(
        self, name: str, category: str | None, approach: str = "other", *, cacheable: bool = False
    ) -> None:
        self.name, self.category, self.approach, self.cacheable = name, category, approach, cacheable
        self.calls = 0

    def judge(self, ctx: JudgeContext) -> SoftVerdict:
        self.calls += 1
        if self.category is None:
            raise RuntimeError("judge exploded")
        return SoftVerdict(
            judge=self.name,
            bottleneck_target=BottleneckTarget(
                category=self.category,
                human_target="h",
                agent_target="a",
                rationale="r",
            ),
            approach_comparison=ApproachComparison(category=self.approach, rationale="r"),
            order=ctx.order,
        )


def judges(**spec: Fixed) -> dict[str, JudgeFactory]:
    """Factories handing out the given judge objects (so a test can count their calls)."""
    return {name: _factory(judge) for name, judge in spec.items()}


def _factory(judge: Fixed) -> JudgeFactory:
    return lambda arg: judge


def report(tmp_path: Path, *verdicts: tuple[str, str | None, str]) -> JudgeReport:
    extra = judges(**{name: Fixed(name, category, approach) for name, category, approach in verdicts})
    return run_judges([name for name, _, _ in verdicts], INPUT, cache_dir=tmp_path, extra_judges=extra)


# ---- specs -----------------------------------------------------------------------------------------


def test_parse_judge_specs_accepts_strings_and_lists() -> None:
    assert parse_judge_specs("overlap, anthropic:claude-sonnet-4-6") == [
        "overlap",
        "anthropic:claude-sonnet-4-6",
    ]
    assert parse_judge_specs(["openai:gpt-4.1", "openai:ft:gpt-4o:org:x"]) == [
        "openai:gpt-4.1",
        "openai:ft:gpt-4o:org:x",
    ]
    assert parse_judge_specs("") == parse_judge_specs("none") == parse_judge_specs(None) == []
    assert parse_judge_specs("mine:thing", known=["mine"]) == ["mine:thing"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("gemini:flash", "unknown judge 'gemini'"),
        ("anthropic", "missing model; write anthropic:MODEL"),
        ("openai:", "missing model; write openai:MODEL"),
        ("overlap:x", "overlap takes no argument"),
        ("overlap,overlap", "listed twice"),
    ],
)
def test_parse_judge_specs_names_the_bad_spec_and_the_valid_forms(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="judge spec") as info:
        parse_judge_specs(value)
    assert fragment in str(info.value)
    assert repr(value.split(",")[0]) in str(info.value)
    if "twice" not in fragment:
        assert "overlap, anthropic:MODEL, openai:MODEL" in str(info.value)


def test_registry_has_the_builtins_and_extras() -> None:
    registry = judge_registry([judges(mine=Fixed("mine", "same_target"))])
    assert {"overlap", "anthropic", "openai", "mine"} <= set(registry)


# ---- majority and quadrants ------------------------------------------------------------------------


def test_majority_decides_and_the_first_winner_gives_the_categories(tmp_path: Path) -> None:
    r = report(
        tmp_path,
        ("j1", "different_target", "ineffective"),
        ("j2", "related_target", "valid_alternative"),
        ("j3", "same_target", "similar_approach"),
    )
    assert r.right_target is True
    assert (r.bottleneck, r.approach) == ("related_target", "valid_alternative")
    assert r.votes == [False, True, True]
    assert [v.judge for v in r.verdicts] == ["j1", "j2", "j3"]


def test_a_tie_goes_to_the_first_listed_judge_with_a_verdict(tmp_path: Path) -> None:
    r = report(
        tmp_path,
        ("broken", None, "other"),
        ("j1", "different_target", "ineffective"),
        ("j2", "same_target", "similar_approach"),
    )
    assert r.right_target is False and r.bottleneck == "different_target"
    assert r.verdicts[0].status == "judge_error"
    assert r.verdicts[0].error == "RuntimeError: judge exploded"
    assert r.error is None


def test_no_verdict_leaves_the_task_unscored_with_the_reasons(tmp_path: Path) -> None:
    r = run_judges(
        ["broken", "nope:x"], INPUT, cache_dir=tmp_path, extra_judges=judges(broken=Fixed("b", None))
    )
    assert r.right_target is None and r.bottleneck is None and r.approach is None
    assert r.error is not None and "broken: RuntimeError: judge exploded" in r.error
    assert "nope:x: unknown judge 'nope'" in r.error
    assert quadrant("beats", r.bottleneck) == "unscored"
    assert run_judges([], INPUT, cache_dir=tmp_path).right_target is None


@pytest.mark.parametrize(
    ("hard", "category", "expected"),
    [
        ("beats", "same_target", "Q1"),
        ("similar", "related_target", "Q1"),
        ("worse", "same_target", "Q2"),
        ("failed", "related_target", "Q2"),
        ("beats", "different_target", "Q3"),
        ("similar", "no_optimization", "Q3"),
        ("worse", "different_target", "Q4"),
        ("failed", "no_optimization", "Q4"),
    ],
)
def test_quadrants_combine_the_hard_verdict_with_the_judges(
    tmp_path: Path, hard: str, category: str, expected: str
) -> None:
    r = report(tmp_path, ("j1", category, "other"), ("overlap", None, "other"))
    assert quadrant(hard, r.bottleneck) == expected


def test_report_wire_format_round_trips(tmp_path: Path) -> None:
    r = report(tmp_path, ("j1", "same_target", "similar_approach"))
    wire = json.loads(json.dumps(r.to_wire()))
    assert wire["bottleneck"] == "same_target" and wire["verdicts"][0]["order"] in (
        "human_first",
        "agent_first",
    )
    assert JudgeReport.model_validate(wire) == r


def test_cacheable_judges_are_asked_once(tmp_path: Path) -> None:
    judge = Fixed("mine", "same_target", cacheable=True)
    extra = judges(mine=judge)
    first = run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    second = run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    assert judge.calls == 1
    assert (first.verdicts[0].cached, second.verdicts[0].cached) == (False, True)
    run_judges(
        ["mine"],
        INPUT,
        cache_dir=tmp_path,
        extra_judges=extra,
        seed=next(s for s in range(50) if draw_order(s, "mine", INPUT.task_id) != first.verdicts[0].order),
    )
    assert judge.calls == 2, "another A/B order is another prompt"


def test_an_edited_or_unreadable_cached_verdict_is_a_miss(tmp_path: Path) -> None:
    judge = Fixed("mine", "same_target", cacheable=True)
    extra = judges(mine=judge)
    run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    (entry,) = (tmp_path / "judge").rglob("*.json")
    entry.write_text(entry.read_text().replace("same_target", "different_target"))
    edited = run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    assert judge.calls == 2 and edited.verdicts[0].cached is False
    assert edited.bottleneck == "same_target", "the edit was not believed"
    entry.write_text("{not json")
    unreadable = run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    assert judge.calls == 3 and unreadable.verdicts[0].cached is False
    again = run_judges(["mine"], INPUT, cache_dir=tmp_path, extra_judges=extra)
    assert judge.calls == 3 and again.verdicts[0].cached is True, "the verdict was stored afresh"


# ---- agreement -------------------------------------------------------------------------------------


def test_agreement_percent_and_kappa() -> None:
    rows: list[list[bool | None]] = [
        [True, True],
        [True, False],
        [False, False],
        [False, False],
        [None, True],
    ]
    result = agreement(rows)
    # 4 comparable tasks, 3 agree; p1 = 0.5, p2 = 0.25 → chance 0.5 → kappa 0.5
    assert result == {"judges": 2, "pairs": 4, "percent_agreement": 75.0, "cohen_kappa": 0.5}


def test_agreement_is_undefined_where_it_should_be() -> None:
    assert agreement([[True], [False]])["percent_agreement"] is None
    assert agreement([])["cohen_kappa"] is None
    same = agreement([[True, True], [True, True]])
    assert same["percent_agreement"] == 100.0 and same["cohen_kappa"] is None
    three = agreement([[True, True, False], [False, False, False]])
    assert three["pairs"] == 6 and three["percent_agreement"] == pytest.approx((100 + 50 + 50) / 3, abs=0.1)


# ---- prompt pieces ---------------------------------------------------------------------------------


def test_trim_keeps_whole_files_and_says_what_was_cut() -> None:
    section = "diff --git a/{0} b/{0}\n--- a/{0}\n+++ b/{0}\n@@ -1,40 +1,40 @@\n" + "+line\n" * 200
    text = "".join(section.format(name) for name in ("a.py", "b.py", "c.py"))
    trimmed = trim_patch(text, 2000)
    assert len(trimmed) <= 2000
    assert trimmed.startswith(section.format("a.py")[:100])
    assert TRIM_MARKER.split("{")[0] in trimmed
    assert "b.py" in trimmed.splitlines()[-1] and "c.py (whole file section" in trimmed
    assert f"of {len(text)} characters" in trimmed
    assert trim_patch("short\n", 2000) == "short\n"


def test_prompt_trims_each_patch(tmp_path: Path) -> None:
    big = JudgeInput(task_id="t", description="d", human_patch="+x\n" * 5000, agent_patch="+y\n")
    prompt = build_prompt(JudgeContext(big, "agent_first", max_patch_chars=1000))
    assert "patch trimmed to" in prompt and len(prompt) < 5000
    assert prompt.index("+y") < prompt.index("+x"), "agent first"


def test_order_is_reproducible_and_varies_over_tasks() -> None:
    orders = [draw_order(7, "openai:gpt-4.1", f"task-{i}") for i in range(40)]
    assert orders == [draw_order(7, "openai:gpt-4.1", f"task-{i}") for i in range(40)]
    assert set(orders) == {"human_first", "agent_first"}


def test_prices_default_override_and_prefix() -> None:
    table = price_table({"my-model": (1.0, 2.0), "gpt-4.1": (10.0, 10.0)})
    assert cost_usd("openai:my-model", 1_000_000, 500_000, table=table) == pytest.approx(2.0)
    assert cost_usd("openai:gpt-4.1", 1_000_000, 0, table=table) == pytest.approx(10.0)
    assert cost_usd("anthropic:claude-haiku-4-5-20251001", 1_000_000, 0, table=table) == pytest.approx(1.0)
    assert cost_usd("openai:unknown-model", 10, 10, table=table) is None


def test_price_files(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('"gpt-4.1" = [1.5, 6]\n"openai:local" = [0, 0]\n')
    assert load_prices(tmp_path / "p.toml") == {"gpt-4.1": (1.5, 6.0), "openai:local": (0.0, 0.0)}
    (tmp_path / "p.json").write_text('{"m": [1, "x"]}')
    with pytest.raises(ValueError, match=r"p\.json: 'm': expected \[input, output\]"):
        load_prices(tmp_path / "p.json")
    with pytest.raises(ValueError, match="cannot read"):
        load_prices(tmp_path / "missing.json")
