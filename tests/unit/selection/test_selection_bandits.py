"""The issue's simulation, in process: one model right 90% of the time, two right 50%,
feedback after every answer; then the best one degrades to 30%."""

from __future__ import annotations

import pytest

from tests.unit.selection.selection_sim import World

GOOD = {"m1": 0.5, "m2": 0.9, "m3": 0.5}
DEGRADED = {"m1": 0.5, "m2": 0.3, "m3": 0.5}
BANDITS = ["exp3", "thompson", "epsilon_greedy"]


@pytest.mark.parametrize("policy", BANDITS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_bandit_sends_most_of_the_last_200_of_1000_queries_to_the_best_model(
    policy: str, seed: int
) -> None:
    trace = World.of(policy, seed).run(GOOD, 1000)

    assert trace.share("m2", 800, 1000) > 0.8


@pytest.mark.parametrize("policy", BANDITS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_bandit_moves_traffic_to_the_next_best_within_1000_queries_of_a_degradation(
    policy: str, seed: int
) -> None:
    world = World.of(policy, seed)
    world.run(GOOD, 1000)

    trace = world.run(DEGRADED, 1000)

    assert trace.share("m2", 1800, 2000) < 0.2
    assert trace.share("m1", 1800, 2000) + trace.share("m3", 1800, 2000) > 0.8


@pytest.mark.parametrize("policy", BANDITS)
def test_a_bandit_asks_one_model_per_query(policy: str) -> None:
    trace = World.of(policy).run(GOOD, 50)

    assert all(len(asked) == 1 for asked in trace.asked)


@pytest.mark.parametrize("policy", BANDITS)
def test_the_same_seed_gives_the_same_choices(policy: str) -> None:
    first = World.of(policy, seed=7).run(GOOD, 200)
    second = World.of(policy, seed=7).run(GOOD, 200)

    assert first.asked == second.asked
