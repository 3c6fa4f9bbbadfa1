"""`exp4`: an ensemble of every linked model, combined by learned weights."""

from __future__ import annotations

import random

import pytest

from clipper.selection import configure
from clipper.selection.base import Feedback, PolicyState, QueryContext
from clipper.selection.exp4 import Exp4Policy, weighted_mean, weighted_vote
from tests.unit.selection.selection_sim import ARMS, World

GOOD = {"m1": 0.5, "m2": 0.9, "m3": 0.5}
EQUAL = {"m1": 0.75, "m2": 0.75, "m3": 0.75}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_ensemble_is_at_least_as_accurate_as_the_best_model(seed: int) -> None:
    trace = World.of("exp4", seed).run(GOOD, 1000)

    # After a short warm-up of the weights (the first 100 queries).
    assert trace.accuracy(100, 1000) >= trace.accuracy(100, 1000, "m2")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_ensemble_of_equal_models_beats_each_of_them(seed: int) -> None:
    trace = World.of("exp4", seed).run(EQUAL, 1000)

    best = max(trace.accuracy(100, 1000, model) for model in EQUAL)
    assert trace.accuracy(100, 1000) > best


def test_every_model_is_asked() -> None:
    selection = Exp4Policy().select(PolicyState(), QueryContext(ARMS, None, random.Random(0)))

    assert selection.models == ARMS


def test_the_weights_move_toward_the_models_that_are_right() -> None:
    policy = Exp4Policy()
    state = policy.observe(PolicyState(), Feedback({"m1": 0.0, "m2": 1.0, "m3": 0.0}, ARMS))

    weights = policy.weights(state, ARMS)
    assert weights["m2"] > weights["m1"] == pytest.approx(weights["m3"])
    assert sum(weights.values()) == pytest.approx(1.0)


def test_a_weighted_vote_picks_the_label_with_most_weight() -> None:
    # A tie goes to the label of the heaviest single model.
    answers = {"m1": "cat", "m2": "dog", "m3": "dog"}

    assert weighted_vote(answers, {"m1": 0.45, "m2": 0.3, "m3": 0.25}) == "dog"
    assert weighted_vote(answers, {"m1": 0.5, "m2": 0.3, "m3": 0.2}) == "cat"


def test_a_weighted_mean_averages_numbers_and_lists_of_numbers() -> None:
    weights = {"m1": 0.75, "m2": 0.25}

    assert weighted_mean({"m1": 1.0, "m2": 5.0}, weights) == pytest.approx(2.0)
    assert weighted_mean({"m1": [0.0, 4.0], "m2": [4.0, 0.0]}, weights) == [1.0, 3.0]


def test_a_weighted_mean_of_labels_falls_back_to_a_vote() -> None:
    assert weighted_mean({"m1": "a", "m2": "b"}, {"m1": 0.4, "m2": 0.6}) == "b"


def test_only_the_answers_that_arrived_are_combined_and_named() -> None:
    policy = configure("exp4", {"loss": "squared"}).policy

    combined = policy.combine(PolicyState(), {"m1": 2.0, "m3": 4.0})

    assert combined.output == pytest.approx(3.0)
    assert combined.models == ("m1", "m3")
