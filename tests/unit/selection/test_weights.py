"""Shared log-weights stay finite whatever the weights (a case the policy invariants'
property test found: a weight that underflows to 0 with nothing shared)."""

from __future__ import annotations

import math

from clipper.selection.weights import normalised, shared


def test_nothing_shared_keeps_far_apart_weights_finite() -> None:
    weights = shared({"a": 0.0, "b": -1000.0}, share=0.0)

    assert weights == {"a": 0.0, "b": -1000.0}


def test_a_share_lifts_every_weight_and_the_largest_is_zero() -> None:
    weights = shared({"a": 0.0, "b": -1000.0, "c": 5.0}, share=0.3)

    assert max(weights.values()) == 0.0
    assert all(math.isfinite(value) for value in weights.values())
    assert weights["b"] > -1000.0  # brought back within reach
    assert math.isclose(sum(normalised(list(weights.values()))), 1.0)
