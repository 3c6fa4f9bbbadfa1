"""`single`: Clipper's behaviour, every query goes to the first linked model."""

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

__all__ = ["SinglePolicy"]


class SinglePolicy:
    """Ask the first linked model (by name); learn nothing."""

    name: ClassVar[str] = "single"
    PARAMS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SinglePolicy:
        """The policy; it takes no parameters."""
        return cls()

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """The first arm."""
        return Selection(query.arms[:1])

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """The one answer."""
        return first_answer(answers)

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """Nothing to learn."""
        return state

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """The first arm gets all traffic."""
        return {arm: {"probability": 1.0 if index == 0 else 0.0} for index, arm in enumerate(arms)}
