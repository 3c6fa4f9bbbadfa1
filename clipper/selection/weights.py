"""Log-weights shared by the Exp3 and Exp4 policies: normalising and weight sharing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["normalised", "shared"]


def normalised(log_weights: Sequence[float]) -> list[float]:
    """Weights summing to 1 (a softmax, stable for any log-weights)."""
    if not log_weights:
        return []
    top = max(log_weights)
    weights = [math.exp(value - top) for value in log_weights]
    total = sum(weights)
    return [weight / total for weight in weights]


def shared(log_weights: Mapping[str, float], share: float) -> dict[str, float]:
    """Exp3.S-style weight sharing: every arm gets `share / K` of the total weight added,
    so no weight falls far below the others and a model that improves can come back.
    The result is rescaled so the largest log-weight is 0 (they never overflow)."""
    arms = list(log_weights)
    bonus = share / max(1, len(arms))
    if bonus == 0:  # nothing shared: the log-weights shifted (a weight that underflows to
        top_log = max(log_weights.values(), default=0.0)  # 0 would have no logarithm)
        return {arm: log_weights[arm] - top_log for arm in arms}
    weights = normalised([log_weights[arm] for arm in arms])
    mixed = [weight + bonus for weight in weights]
    top = max(mixed, default=1.0)
    return {arm: math.log(weight / top) for arm, weight in zip(arms, mixed, strict=True)}
