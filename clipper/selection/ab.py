"""`ab`: a fixed weighted split between linked models, sticky per user.

Parameters: `weights` (`{model: weight}`; absent: an equal split; a linked model not named
gets weight 0). A query with a `uid` goes to the arm its hashed uid falls into, so the
same user always gets the same model while the arms and weights stay the same; a query
without one is split at random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from clipper.selection.base import (
    Combined,
    Feedback,
    PolicyState,
    QueryContext,
    Selection,
    first_answer,
)
from clipper.selection.params import weights

__all__ = ["ABPolicy", "uid_fraction"]

_GOLDEN_64 = 0x9E3779B97F4A7C15
_MASK_64 = (1 << 64) - 1


def uid_fraction(uid: int) -> float:
    """A fixed point in [0, 1) for a user id, spread evenly for consecutive ids
    (Fibonacci hashing, stable across processes and restarts)."""
    mixed = ((uid & _MASK_64) * _GOLDEN_64) & _MASK_64
    mixed ^= mixed >> 29
    mixed = (mixed * _GOLDEN_64) & _MASK_64
    return (mixed >> 11) / float(1 << 53)


class ABPolicy:
    """A fixed weighted split; learns nothing."""

    name: ClassVar[str] = "ab"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"weights"})

    def __init__(self, split: Mapping[str, float] | None = None) -> None:
        self.split = dict(split) if split else None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ABPolicy:
        """Validate `weights`."""
        return cls(weights(params, "weights"))

    def probabilities(self, arms: Sequence[str]) -> list[float]:
        """Each arm's share of the traffic."""
        raw = [1.0] * len(arms) if self.split is None else [self.split.get(a, 0.0) for a in arms]
        total = sum(raw)
        if total <= 0:
            return [1.0 / len(arms)] * len(arms)
        return [weight / total for weight in raw]

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """The arm that the uid (or a random draw) falls into."""
        point = query.rng.random() if query.uid is None else uid_fraction(query.uid)
        cumulative = 0.0
        probabilities = self.probabilities(query.arms)
        for arm, probability in zip(query.arms, probabilities, strict=True):
            cumulative += probability
            if point < cumulative:
                return Selection((arm,))
        last = max(i for i, probability in enumerate(probabilities) if probability > 0)
        return Selection((query.arms[last],))

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The one answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """A fixed split learns nothing."""
        return state

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each arm's share."""
        shares = self.probabilities(arms)
        return {arm: {"probability": p} for arm, p in zip(arms, shares, strict=True)}
