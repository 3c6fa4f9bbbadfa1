"""`thompson`: Thompson sampling, the model whose sampled reward is highest answers.

Parameters: `likelihood` (`bernoulli` for rewards in [0, 1], e.g. right/wrong; `gaussian`
for real rewards; `auto`: bernoulli when the app's `loss` is `exact`, else gaussian) and
`discount` (0.99: a model's evidence is multiplied by it before each of its rewards is
added, so its posterior rests on about its last 1 / (1 - discount) rewards and follows it
when it degrades; 1.0 remembers everything).

State per arm. Bernoulli: `alpha`, `beta` (rewards and failures seen; the prior Beta(1, 1)
is added when sampling). Gaussian: `n`, `sum`, `sum_sq` of the rewards; the posterior of
the mean is approximated by a normal around `sum / (n + 1)` (one prior pseudo-reward 0
with variance 1) with variance `s^2 / (n + 1)`.
"""

from __future__ import annotations

import math
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
from clipper.selection.params import choice, number

__all__ = ["ThompsonPolicy"]

_BERNOULLI_STATS = ("alpha", "beta")
_GAUSSIAN_STATS = ("n", "sum", "sum_sq")


class ThompsonPolicy:
    """Beta-Bernoulli or Gaussian Thompson sampling with discounting."""

    name: ClassVar[str] = "thompson"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"likelihood", "discount"})

    def __init__(self, gaussian: bool = False, discount: float = 0.99) -> None:
        self.gaussian = gaussian
        self.discount = discount

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ThompsonPolicy:
        """Validate `likelihood` and `discount`; `auto` follows the app's `loss`."""
        likelihood = choice(params, "likelihood", "auto", ("auto", "bernoulli", "gaussian"))
        if likelihood == "auto":
            likelihood = "bernoulli" if params.get("loss", "exact") == "exact" else "gaussian"
        return cls(likelihood == "gaussian", number(params, "discount", 0.99, 0.5, 1))

    def _sample(self, state: PolicyState, arm: str, query: QueryContext) -> float:
        if not self.gaussian:
            alpha, beta = state.stat(arm, "alpha"), state.stat(arm, "beta")
            return query.rng.betavariate(1 + alpha, 1 + beta)
        mean, variance = self._posterior(state, arm)
        return query.rng.gauss(mean, math.sqrt(variance))

    def _posterior(self, state: PolicyState, arm: str) -> tuple[float, float]:
        """Mean and variance of the posterior of the arm's mean reward (gaussian)."""
        n, total, total_sq = (state.stat(arm, stat) for stat in _GAUSSIAN_STATS)
        mean = total / (n + 1)
        spread = (total_sq + 1 - (n + 1) * mean * mean) / (n + 1)
        return mean, max(spread, 1e-9) / (n + 1)

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """The arm with the highest sampled mean reward."""
        samples = [(self._sample(state, arm, query), arm) for arm in query.arms]
        return Selection((max(samples)[1],))

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The one answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Discount each judged arm's evidence, then add its reward."""
        stats = _GAUSSIAN_STATS if self.gaussian else _BERNOULLI_STATS
        updates = {
            arm: {stat: state.stat(arm, stat) * self.discount for stat in stats}
            for arm in feedback.rewards
        }
        for arm, reward in feedback.rewards.items():
            update = updates[arm]
            if self.gaussian:
                update["n"] += 1
                update["sum"] += reward
                update["sum_sq"] += reward * reward
            else:
                clipped = min(1.0, max(0.0, reward))
                update["alpha"] += clipped
                update["beta"] += 1 - clipped
        return state.with_stats(updates)

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """The posterior of each arm's mean reward."""
        described = {}
        for arm in arms:
            if self.gaussian:
                mean, variance = self._posterior(state, arm)
                described[arm] = {"mean": mean, "std": math.sqrt(variance),
                                  "n": state.stat(arm, "n")}  # fmt: skip
            else:
                alpha = 1 + state.stat(arm, "alpha")
                beta = 1 + state.stat(arm, "beta")
                described[arm] = {"alpha": alpha, "beta": beta, "mean": alpha / (alpha + beta)}
        return described
