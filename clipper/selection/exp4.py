"""`exp4`: an ensemble; every linked model answers and the answers are combined by
learned weights (weighted vote for labels, weighted mean for numbers).

Parameters: `eta` (0.1: the learning rate of the multiplicative weights: after feedback a
model's weight is multiplied by `exp(eta * (reward - 1))`), `combine` (`vote`, `mean`, or
`auto`: mean when the app's `loss` is `squared`, else vote) and `share` (0.001: weight
sharing, as in `exp3`, so a model that improves regains its say). Only the answers that
arrived by the deadline are combined (straggler mitigation), their weights renormalised.
State per arm: `log_weight`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from clipper.selection.base import Combined, Feedback, PolicyState, QueryContext, Selection
from clipper.selection.losses import vote_key
from clipper.selection.params import choice, number
from clipper.selection.weights import normalised, shared

__all__ = ["Exp4Policy", "weighted_mean", "weighted_vote"]


def weighted_vote(answers: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """The answer with the most weight behind it; a tie goes to the heaviest single model,
    then to the first answer."""
    totals: dict[Any, float] = {}
    heaviest: dict[Any, float] = {}
    first: dict[Any, Any] = {}
    for model, output in answers.items():
        key = vote_key(output)
        totals[key] = totals.get(key, 0.0) + weights[model]
        heaviest[key] = max(heaviest.get(key, 0.0), weights[model])
        first.setdefault(key, output)
    winner = max(totals, key=lambda key: (totals[key], heaviest[key]))
    return first[winner]


def weighted_mean(answers: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """The weighted mean of numeric answers (element-wise for lists of numbers); a
    weighted vote when the answers are not all numbers of one shape."""
    outputs = list(answers.values())
    if any(isinstance(output, (bool, str, bytes, dict)) or output is None for output in outputs):
        return weighted_vote(answers, weights)
    try:
        values = np.asarray(outputs, dtype=float)
    except (TypeError, ValueError):
        return weighted_vote(answers, weights)
    mean = np.average(values, axis=0, weights=[weights[model] for model in answers])
    return mean.tolist() if isinstance(mean, np.ndarray) else float(mean)


class Exp4Policy:
    """Multiplicative weights over an ensemble of every linked model."""

    name: ClassVar[str] = "exp4"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"eta", "combine", "share"})

    def __init__(self, eta: float = 0.1, mean: bool = False, share: float = 0.001) -> None:
        self.eta = eta
        self.mean = mean
        self.share = share

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Exp4Policy:
        """Validate `eta`, `combine` and `share`; `auto` follows the app's `loss`."""
        combine = choice(params, "combine", "auto", ("auto", "vote", "mean"))
        if combine == "auto":
            combine = "mean" if params.get("loss") == "squared" else "vote"
        return cls(number(params, "eta", 0.1, 0, 100), combine == "mean",
                   number(params, "share", 0.001, 0, 1))  # fmt: skip

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """Every arm."""
        return Selection(query.arms)

    def weights(self, state: PolicyState, arms: Sequence[str]) -> dict[str, float]:
        """Normalised weights of `arms`."""
        values = normalised([state.stat(arm, "log_weight") for arm in arms])
        return dict(zip(arms, values, strict=True))

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """A weighted vote or mean of the answers that arrived."""
        weights = self.weights(state, list(answers))
        combine = weighted_mean if self.mean else weighted_vote
        return Combined(combine(answers, weights), tuple(answers))

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Multiply each judged model's weight by `exp(eta * (reward - 1))`, then share."""
        arms = tuple(dict.fromkeys((*feedback.arms, *feedback.rewards)))
        log_weights = {arm: state.stat(arm, "log_weight") for arm in arms}
        for arm, reward in feedback.rewards.items():
            log_weights[arm] += self.eta * (min(1.0, max(0.0, reward)) - 1)
        updated = shared(log_weights, self.share)
        return state.with_stats({arm: {"log_weight": value} for arm, value in updated.items()})

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each model's normalised weight."""
        return {arm: {"weight": weight} for arm, weight in self.weights(state, arms).items()}
