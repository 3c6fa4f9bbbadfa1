"""The rollout plan and the step judgement (clipper.control.rollout_plan, rollout_analysis)."""

from __future__ import annotations

import pytest

from clipper.control.rollout_analysis import CheckState, Decision, Figures, decide, judge
from clipper.control.rollout_plan import RolloutPlan, Step
from clipper.core.exceptions import InvalidRequest
from clipper.dataplane.rollout_split import Outcome, RolloutSplit, VersionWindow

TRAFFIC = Step(10.0, 0.05)
SHADOW = Step(10.0, shadow=True)


def window(queries: int, errors: int = 0, latency_s: float = 0.01) -> VersionWindow:
    result = VersionWindow()
    for index in range(queries):
        if index < errors:
            result.observe(Outcome.ERROR, None)
        else:
            result.observe(Outcome.ANSWERED, latency_s)
    return result


def test_the_default_plan_is_a_shadow_minute_then_four_shares() -> None:
    plan = RolloutPlan.parse(None)
    assert [(s.shadow, s.share, s.duration_s) for s in plan.steps] == [
        (True, 0.0, 60.0), (False, 0.05, 60.0), (False, 0.25, 60.0), (False, 0.5, 60.0),
        (False, 1.0, 60.0),
    ]  # fmt: skip
    assert RolloutPlan.parse(plan.to_dict()) == plan


def test_a_plan_reads_back_from_its_canonical_form() -> None:
    plan = RolloutPlan.parse({"shadow_s": 0, "steps": [0.1, {"share": 1, "duration_s": 5}],
                              "step_s": 2, "checks": {"max_p50_ratio": None,
                              "max_p99_ratio": {"threshold": 1.2, "min_queries": 7}}})  # fmt: skip
    assert [(s.share, s.duration_s) for s in plan.steps] == [(0.1, 2.0), (1.0, 5.0)]
    assert "max_p50_ratio" not in [check.name for check in plan.checks]
    p99 = next(check for check in plan.checks if check.name == "max_p99_ratio")
    assert (p99.threshold, p99.min_queries, p99.needs) == (1.2, 7, 100)
    assert RolloutPlan.parse(plan.to_dict()) == plan


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"steps": [0.5]}, "the last must be 1"),
        ({"steps": [0.5, 0.2, 1]}, "must not decrease"),
        ({"steps": [0, 1]}, r"in \(0, 1\]"),
        ({"checks": {"max_p95": 1}}, "unknown rollout check"),
        ({"step_s": 0}, "step_s must be"),
        ({"speed": 1}, "unknown rollout plan field"),
        ({"on_restart": "later"}, "on_restart"),
    ],
)
def test_a_wrong_plan_is_refused_with_what_is_wrong(plan: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        RolloutPlan.parse(plan)


def test_a_check_waits_for_its_minimum_of_queries() -> None:
    plan = RolloutPlan.parse({"min_queries": 20})
    verdict = judge(plan, TRAFFIC, Figures.of(window(10, errors=5)), Figures.of(window(100)))
    error_rate = verdict.results[0]
    assert (error_rate.state, error_rate.queries_needed) == (CheckState.WAITING, 10)
    assert decide(verdict, 60.0, TRAFFIC) is Decision.WAIT


def test_an_error_rate_over_its_threshold_rolls_back_with_both_figures() -> None:
    plan = RolloutPlan.parse({"min_queries": 20})
    verdict = judge(plan, TRAFFIC, Figures.of(window(100, errors=10)), Figures.of(window(100)))
    failed = verdict.failed
    assert failed is not None
    assert failed.reason() == (
        "max_error_rate: new version error_rate 0.1 vs current 0, over the limit 0.01 "
        "(threshold 0.01)"
    )
    assert decide(verdict, 0.0, TRAFFIC) is Decision.ROLL_BACK


def test_a_relative_latency_check_compares_with_the_current_version() -> None:
    plan = RolloutPlan.parse({"checks": {"max_p50_ratio": None}, "latency_slack_s": 0.001})
    slow = judge(plan, TRAFFIC, Figures.of(window(200, latency_s=0.03)),
                 Figures.of(window(200, latency_s=0.01)))  # fmt: skip
    assert slow.failed is not None
    assert slow.failed.check.name == "max_p99_ratio"
    assert slow.failed.limit == pytest.approx(0.016)
    same = judge(plan, TRAFFIC, Figures.of(window(200)), Figures.of(window(200)))
    assert same.passed
    assert decide(same, 9.9, TRAFFIC) is Decision.WAIT
    assert decide(same, 10.0, TRAFFIC) is Decision.ADVANCE


def test_agreement_is_judged_in_the_shadow_step_only() -> None:
    plan = RolloutPlan.parse({"min_queries": 5})
    shadow = window(100)
    for index in range(100):
        shadow.compare(agreed=index < 90)
    figures = Figures.of(shadow)
    assert figures.agreement == pytest.approx(0.9)
    in_shadow = judge(plan, SHADOW, figures, Figures.of(window(100)))
    assert in_shadow.failed is not None
    assert in_shadow.failed.check.name == "min_agreement"
    in_traffic = judge(plan, TRAFFIC, figures, Figures.of(window(100)))
    assert "min_agreement" not in [result.check.name for result in in_traffic.results]


def test_a_window_counts_errors_as_defaults_and_its_quantiles_by_rank() -> None:
    observed = VersionWindow()
    for latency_ms in range(1, 101):
        observed.observe(Outcome.ANSWERED, latency_ms / 1000)
    observed.observe(Outcome.ERROR, None)
    observed.observe(Outcome.MISSED, 0.5)
    assert (observed.queries, observed.errors, observed.defaults) == (102, 1, 2)
    assert observed.quantile(0.5) == pytest.approx(0.051)
    assert observed.quantile(0.99) == pytest.approx(0.1)


def test_a_split_keeps_the_last_baseline_window_for_the_full_share_step() -> None:
    split = RolloutSplit("model", "1", "2")
    split.enter_step(0.5, False)
    split.baseline_window.observe(Outcome.ANSWERED, 0.01)
    kept = split.baseline_window
    split.enter_step(1.0, False)
    assert split.previous_baseline is kept
    assert split.baseline_window.queries == 0
    assert split.to_canary()


def rewarded(rewards: list[float], queries: int = 100) -> VersionWindow:
    result = window(queries)
    for reward in rewards:
        result.reward(reward)
    return result


def test_reward_checks_are_off_unless_named_and_judge_traffic_steps_on_feedback() -> None:
    assert "min_reward_ratio" not in [check.name for check in RolloutPlan.parse(None).checks]
    plan = RolloutPlan.parse({"checks": {"min_reward_ratio": {"threshold": 0.9,
                                                              "min_queries": 40}}})  # fmt: skip
    waiting = judge(plan, TRAFFIC, Figures.of(rewarded([0.5] * 39)),
                    Figures.of(rewarded([1.0] * 50)))  # fmt: skip
    reward = next(r for r in waiting.results if r.check.name == "min_reward_ratio")
    assert (reward.state, reward.queries_needed) == (CheckState.WAITING, 1)
    worse = judge(plan, TRAFFIC, Figures.of(rewarded([0.5] * 40)), Figures.of(rewarded([1.0] * 50)))
    assert worse.failed is not None
    assert worse.failed.reason() == (
        "min_reward_ratio: new version reward 0.5 vs current 1, under the limit 0.9 "
        "(threshold 0.9 x the current version's)"
    )
    in_shadow = judge(plan, SHADOW, Figures.of(rewarded([0.5] * 40)),
                      Figures.of(rewarded([1.0] * 50)))  # fmt: skip
    assert "min_reward_ratio" not in [r.check.name for r in in_shadow.results]


def test_a_reward_drop_check_allows_the_threshold_below_the_current_reward() -> None:
    plan = RolloutPlan.parse({"min_queries": 10, "checks": {"max_reward_drop": 0.1}})
    current = Figures.of(rewarded([0.8] * 20))
    near = judge(plan, TRAFFIC, Figures.of(rewarded([0.75] * 20)), current)
    assert near.passed
    far = judge(plan, TRAFFIC, Figures.of(rewarded([0.6] * 20)), current)
    assert far.failed is not None
    assert far.failed.limit == pytest.approx(0.7)
    assert "(threshold 0.1 below the current version's)" in far.failed.reason()
    assert RolloutPlan.parse(plan.to_dict()) == plan


def test_a_split_gives_each_version_its_window_for_feedback() -> None:
    split = RolloutSplit("model", "1", "2")
    assert split.window_of("1") is split.baseline_window
    assert split.window_of("2") is split.canary_window
    assert split.window_of("3") is None
