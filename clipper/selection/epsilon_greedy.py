"""`epsilon_greedy`: mostly the model with the best estimated reward, sometimes another.

Parameters: `epsilon` (0.1: the share of queries sent to a uniformly random model) and
`step_size` (0.03: the weight of each new reward in a model's estimate once it has more
than 1/step_size rewards, so old rewards fade and a model that degrades loses its traffic;
null for a plain average). State per arm: `value` (estimated reward), `pulls`.
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
from clipper.selection.params import number, optional_number

__all__ = ["EpsilonGreedyPolicy"]


class EpsilonGreedyPolicy:
    """Exploit the best estimate, explore with probability epsilon."""

    name: ClassVar[str] = "epsilon_greedy"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"epsilon", "step_size"})

    def __init__(self, epsilon: float = 0.1, step_size: float | None = 0.03) -> None:
        self.epsilon = epsilon
        self.step_size = step_size

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EpsilonGreedyPolicy:
        """Validate `epsilon` and `step_size`."""
        step_size = optional_number(params, "step_size", 1e-6, 1) if "step_size" in params else 0.03
        return cls(number(params, "epsilon", 0.1, 0, 1), step_size)

    def _greedy(self, state: PolicyState, arms: Sequence[str]) -> list[str]:
        """Untried arms first, else the arms with the best estimate (ties kept)."""
        untried = [arm for arm in arms if state.stat(arm, "pulls") == 0]
        if untried:
            return untried
        best = max(state.stat(arm, "value") for arm in arms)
        return [arm for arm in arms if state.stat(arm, "value") == best]

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """A random arm with probability epsilon, else a greedy one."""
        rng = query.rng
        if rng.random() < self.epsilon:
            return Selection((rng.choice(query.arms),))
        return Selection((rng.choice(self._greedy(state, query.arms)),))

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The one answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Move each judged arm's estimate toward its reward."""
        updates = {}
        for arm, reward in feedback.rewards.items():
            pulls = state.stat(arm, "pulls") + 1
            rate = 1 / pulls if self.step_size is None else max(self.step_size, 1 / pulls)
            value = state.stat(arm, "value")
            updates[arm] = {"pulls": pulls, "value": value + rate * (reward - value)}
        return state.with_stats(updates)

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Estimated reward, pulls and the chance of being selected now."""
        greedy = self._greedy(state, arms) if arms else []
        explore = self.epsilon / max(1, len(arms))
        return {
            arm: {
                "value": state.stat(arm, "value"),
                "pulls": state.stat(arm, "pulls"),
                "probability": explore
                + ((1 - self.epsilon) / len(greedy) if arm in greedy else 0.0),
            }
            for arm in arms
        }
