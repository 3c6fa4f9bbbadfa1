"""Every policy's state stays sound whatever feedback it learns from (issue 28, item 3): after
any sequence of rewards (the update route admits only [0, 1]; here any float, NaN and the
infinities included), with any subset selected, its statistics stay finite, what it selects
is among the candidates and what it describes is finite, with probabilities in [0, 1]."""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clipper.selection import configure
from clipper.selection.base import Feedback, PolicyState, QueryContext
from clipper.selection.shadow import ShadowPolicy

POLICIES: list[tuple[str, dict[str, Any]]] = [
    ("single", {}),
    ("ab", {}),
    ("epsilon_greedy", {}),
    ("epsilon_greedy", {"step_size": None}),
    ("thompson", {"likelihood": "bernoulli"}),
    ("thompson", {"likelihood": "gaussian", "discount": 0.5}),
    ("exp3", {"eta": 10, "share": 0}),
    ("exp3", {}),
    ("exp4", {"eta": 10}),
    ("exp4", {}),
    ("shadow", {}),
]
ARM_NAMES = ["a", "b", "c", "d"]
rewards = st.one_of(st.floats(min_value=0.0, max_value=1.0), st.floats())
feedback_steps = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(ARM_NAMES), rewards, min_size=1),
        st.lists(st.sampled_from(ARM_NAMES), unique=True),
        st.booleans(),
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    ),
    max_size=40,
)


def assert_sound(state: PolicyState, described: dict[str, dict[str, float]]) -> None:
    assert state.is_finite(), state
    for stats in described.values():
        for name, value in stats.items():
            assert math.isfinite(value), (name, value)
            if name == "probability":
                assert -1e-9 <= value <= 1 + 1e-9, value


@settings(max_examples=60, deadline=None)
@given(
    policy_index=st.integers(0, len(POLICIES) - 1),
    arm_count=st.integers(1, len(ARM_NAMES)),
    steps=feedback_steps,
    seed=st.integers(0, 2**16),
)
def test_no_feedback_breaks_a_policys_state(
    policy_index: int, arm_count: int, steps: list[Any], seed: int
) -> None:
    name, params = POLICIES[policy_index]
    policy = configure(name, params).policy
    arms = tuple(ARM_NAMES[:arm_count])
    rng = random.Random(seed)
    state = PolicyState()
    for judged, selected, agreed, latency_s in steps:
        feedback = Feedback(judged, arms, tuple(arm for arm in selected if arm in judged))
        state = policy.observe(state, feedback)
        if isinstance(policy, ShadowPolicy) and len(arms) > 1:
            state = policy.record_shadow(state, arms[-1], agreed, latency_s)
        selection = policy.select(state, QueryContext(arms, None, rng))
        assert selection.models
        assert set(selection.models) | set(selection.shadows) <= set(arms)
        assert_sound(state, policy.describe(state, arms))
