"""The other policies (`single`, `shadow`, Gaussian `thompson`) and `configure`."""

from __future__ import annotations

import random

import pytest

from clipper.core.exceptions import InvalidRequest
from clipper.selection import POLICIES, configure
from clipper.selection.base import Feedback, PolicyState, QueryContext, Selection
from clipper.selection.losses import exact_match_reward, squared_error_reward
from clipper.selection.shadow import ShadowPolicy
from clipper.selection.single import SinglePolicy
from clipper.selection.thompson import ThompsonPolicy

ARMS = ("a", "b", "c")


def context(uid: int | None = None, seed: int = 0) -> QueryContext:
    return QueryContext(ARMS, uid, random.Random(seed))


def test_every_documented_policy_is_registered() -> None:
    assert set(POLICIES) == {
        "single", "ab", "epsilon_greedy", "thompson", "exp3", "exp4", "shadow",
    }  # fmt: skip


def test_single_asks_the_first_linked_model_and_learns_nothing() -> None:
    policy = SinglePolicy()
    state = policy.observe(PolicyState(), Feedback({"a": 0.0}, ARMS))

    assert policy.select(state, context()) == Selection(("a",))
    assert state == PolicyState()


def test_shadow_answers_from_the_primary_and_mirrors_to_the_others() -> None:
    policy = ShadowPolicy.from_params({"primary": "b"})

    assert policy.select(PolicyState(), context()) == Selection(("b",), ("a", "c"))


def test_shadow_mirrors_only_the_named_shadows() -> None:
    policy = ShadowPolicy.from_params({"primary": "b", "shadows": ["c"]})

    assert policy.select(PolicyState(), context()) == Selection(("b",), ("c",))


def test_shadow_records_agreement_and_latency() -> None:
    policy = ShadowPolicy.from_params({"primary": "a"})
    state = policy.record_shadow(PolicyState(), "b", True, 0.2)
    state = policy.record_shadow(state, "b", False, 0.4)

    described = policy.describe(state, ARMS)["b"]
    assert described["agreement"] == pytest.approx(0.5)
    assert described["mean_latency_s"] == pytest.approx(0.3)


def test_gaussian_thompson_prefers_the_model_with_higher_real_rewards() -> None:
    policy = configure("thompson", {"loss": "squared"}).policy
    assert isinstance(policy, ThompsonPolicy)
    assert policy.gaussian
    state = PolicyState()
    for _ in range(50):
        state = policy.observe(state, Feedback({"a": 0.2, "b": 0.9, "c": 0.4}, ARMS))

    picks = [policy.select(state, context(seed=seed)).models[0] for seed in range(100)]
    assert picks.count("b") > 90


def test_per_user_is_a_common_parameter() -> None:
    config = configure("epsilon_greedy", {"per_user": True, "max_users": 5, "seed": 3})

    assert (config.per_user, config.max_users, config.seed) == (True, 5, 3)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, "Unknown selection policy"),
        ("exp3", {"gamma": 2}, "gamma"),
        ("exp3", {"weights": {}}, "Unknown parameter"),
        ("thompson", {"likelihood": "poisson"}, "likelihood"),
        ("exp4", {"loss": "hinge"}, "loss"),
        ("epsilon_greedy", {"seed": "x"}, "seed"),
        ("shadow", {"primary": ["a", "b"]}, "primary"),
    ],
)
def test_invalid_policies_and_parameters_are_refused(
    name: str, params: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidRequest, match=match):
        configure(name, params)


@pytest.mark.parametrize(
    ("output", "label", "reward"),
    [(1, 1.0, 1.0), ("cat", "cat", 1.0), ("cat", "dog", 0.0), ([1, 2], [1.0, 2.0], 1.0)],
)
def test_exact_match_compares_values(output: object, label: object, reward: float) -> None:
    assert exact_match_reward(output, label) == reward


def test_squared_error_reward_falls_with_the_error() -> None:
    assert squared_error_reward(3.0, 3.0) == 1.0
    assert squared_error_reward(3.0, 4.0) == pytest.approx(0.5)
    assert squared_error_reward("x", 4.0) == 0.0
