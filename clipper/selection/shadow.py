"""`shadow`: the primary model answers; shadow models get the same queries, and their
answers are recorded (agreement with the primary, latency) but never returned.

Parameters: `primary` (default: the first linked model) and `shadows` (default: every
other linked model). State per arm: `answers`, `agreements`, `latency_s_sum` for shadows,
and `feedback`, `reward_sum` for every model judged by feedback, so a shadow's accuracy
can be compared with the primary's before it is promoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from clipper.core.exceptions import InvalidRequest
from clipper.selection.base import (
    Combined,
    Feedback,
    PolicyState,
    QueryContext,
    Selection,
    first_answer,
)
from clipper.selection.params import model_names

__all__ = ["ShadowPolicy"]


class ShadowPolicy:
    """Answer from the primary, mirror queries to the shadows."""

    name: ClassVar[str] = "shadow"
    PARAMS: ClassVar[frozenset[str]] = frozenset({"primary", "shadows"})

    def __init__(self, primary: str | None = None, shadows: tuple[str, ...] | None = None) -> None:
        self.primary = primary
        self.shadows = shadows

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ShadowPolicy:
        """Validate `primary` and `shadows`."""
        primary = model_names(params, "primary")
        if primary is not None and len(primary) != 1:
            raise InvalidRequest("policy parameter 'primary' must be one model name")
        return cls(primary[0] if primary else None, model_names(params, "shadows"))

    def roles(self, arms: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        """The primary and the shadows among `arms` (the first arm when the primary is not
        one of them)."""
        primary = self.primary if self.primary is not None and self.primary in arms else arms[0]
        wanted = arms if self.shadows is None else self.shadows
        return primary, tuple(arm for arm in arms if arm in wanted and arm != primary)

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """The primary answers; the shadows are asked too."""
        primary, shadows = self.roles(query.arms)
        return Selection((primary,), shadows)

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The primary's answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Count each judged model's rewards."""
        updates = {
            arm: {
                "feedback": state.stat(arm, "feedback") + 1,
                "reward_sum": state.stat(arm, "reward_sum") + reward,
            }
            for arm, reward in feedback.rewards.items()
        }
        return state.with_stats(updates)

    def record_shadow(
        self, state: PolicyState, shadow: str, agreed: bool, latency_s: float
    ) -> PolicyState:
        """Count one shadow answer: whether it agreed with the primary, how long it took."""
        update = {
            "answers": state.stat(shadow, "answers") + 1,
            "agreements": state.stat(shadow, "agreements") + agreed,
            "latency_s_sum": state.stat(shadow, "latency_s_sum") + latency_s,
        }
        return state.with_stats({shadow: update})

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Agreement rate and mean latency of shadows; mean reward of judged models."""
        described: dict[str, dict[str, float]] = {}
        primary, _ = self.roles(arms) if arms else ("", ())
        for arm in arms:
            stats = {"primary": 1.0 if arm == primary else 0.0}
            answers = state.stat(arm, "answers")
            if answers:
                stats["agreement"] = state.stat(arm, "agreements") / answers
                stats["mean_latency_s"] = state.stat(arm, "latency_s_sum") / answers
            feedback = state.stat(arm, "feedback")
            if feedback:
                stats["mean_reward"] = state.stat(arm, "reward_sum") / feedback
            described[arm] = stats
        return described
