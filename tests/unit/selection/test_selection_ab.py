"""`ab`: a fixed weighted split, sticky per user."""

from __future__ import annotations

import random

import pytest

from clipper.core.exceptions import InvalidRequest
from clipper.selection import configure
from clipper.selection.ab import ABPolicy, uid_fraction
from clipper.selection.base import PolicyState, QueryContext

ARMS = ("a", "b")
SPLIT = {"weights": {"a": 90, "b": 10}}


def arm_of(policy: ABPolicy, uid: int | None, rng: random.Random) -> str:
    return policy.select(PolicyState(), QueryContext(ARMS, uid, rng)).models[0]


@pytest.mark.parametrize("with_uids", [False, True])
def test_a_90_10_split_over_2000_queries_lands_within_87_and_93_percent(
    with_uids: bool,
) -> None:
    policy = ABPolicy.from_params(SPLIT)
    rng = random.Random(5)

    arms = [arm_of(policy, uid if with_uids else None, rng) for uid in range(2000)]

    assert 0.87 <= arms.count("a") / 2000 <= 0.93


def test_the_same_uid_always_gets_the_same_arm() -> None:
    policy = ABPolicy.from_params(SPLIT)
    rng = random.Random(0)

    for uid in range(200):
        assert len({arm_of(policy, uid, rng) for _ in range(20)}) == 1


def test_uid_fractions_are_stable_and_in_the_unit_interval() -> None:
    fractions = [uid_fraction(uid) for uid in (0, 1, 2, -7, 2**70)]

    assert fractions == [uid_fraction(uid) for uid in (0, 1, 2, -7, 2**70)]
    assert all(0 <= fraction < 1 for fraction in fractions)


def test_without_weights_the_split_is_even() -> None:
    assert ABPolicy.from_params({}).probabilities(ARMS) == [0.5, 0.5]


def test_a_linked_model_without_a_weight_gets_no_traffic() -> None:
    policy = ABPolicy.from_params({"weights": {"a": 1}})

    assert policy.probabilities(("a", "b", "c")) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("weights", [{"a": -1}, {"a": 0}, {"a": "x"}, [1, 2]])
def test_invalid_weights_are_refused(weights: object) -> None:
    with pytest.raises(InvalidRequest, match="weights"):
        configure("ab", {"weights": weights})
