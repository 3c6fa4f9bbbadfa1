"""`exp3`: the adversarial bandit Exp3 (with Exp3.S weight sharing): one model per query.

Parameters: `gamma` (0.1: the share of traffic spread uniformly, for exploration), `eta`
(0.05: the learning rate) and `share` (0.0003: weight sharing, which bounds how far a
model's weight can fall, so traffic returns to a model that gets better and leaves one
that gets worse). Rewards are clipped to [0, 1]; a reward for a model the policy selected
is divided by its selection probability (an unbiased estimate; the probability is
recomputed from the state when the feedback arrives, exact when feedback follows each
answer), a reward observed with certainty is not. State per arm: `log_weight`.
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
from clipper.selection.params import number
from clipper.selection.weights import normalised, shared

__all__ = ["Exp3Policy"]


class Exp3Policy:
    """Exponential weights over models, mixed with uniform exploration."""

    name: ClassVar[str] = "exp3"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"gamma", "eta", "share"})

    def __init__(self, gamma: float = 0.1, eta: float = 0.05, share: float = 0.0003) -> None:
        self.gamma = gamma
        self.eta = eta
        self.share = share

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Exp3Policy:
        """Validate `gamma`, `eta` and `share`."""
        return cls(
            number(params, "gamma", 0.1, 0, 1),
            number(params, "eta", 0.05, 0, 10),
            number(params, "share", 0.0003, 0, 1),
        )

    def probabilities(self, state: PolicyState, arms: Sequence[str]) -> list[float]:
        """Each arm's chance of being selected."""
        weights = normalised([state.stat(arm, "log_weight") for arm in arms])
        uniform = self.gamma / len(arms)
        return [(1 - self.gamma) * weight + uniform for weight in weights]

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """One arm, drawn by its probability."""
        probabilities = self.probabilities(state, query.arms)
        point = query.rng.random()
        for arm, probability in zip(query.arms, probabilities, strict=True):
            point -= probability
            if point < 0:
                return Selection((arm,))
        return Selection((query.arms[-1],))

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The one answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Raise each judged arm's weight by its (importance-weighted) reward, then share."""
        arms = tuple(dict.fromkeys((*feedback.arms, *feedback.rewards)))
        probabilities = dict(zip(arms, self.probabilities(state, arms), strict=True))
        log_weights = {arm: state.stat(arm, "log_weight") for arm in arms}
        for arm, reward in feedback.rewards.items():
            estimate = min(1.0, max(0.0, reward))
            if arm in feedback.selected:
                estimate /= probabilities[arm]
            log_weights[arm] += self.eta * estimate
        updated = shared(log_weights, self.share)
        return state.with_stats({arm: {"log_weight": value} for arm, value in updated.items()})

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Weights and selection probabilities."""
        if not arms:
            return {}
        weights = normalised([state.stat(arm, "log_weight") for arm in arms])
        probabilities = self.probabilities(state, arms)
        return {
            arm: {"weight": weight, "probability": probability}
            for arm, weight, probability in zip(arms, weights, probabilities, strict=True)
        }
