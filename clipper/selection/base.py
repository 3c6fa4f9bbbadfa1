"""The selection-policy contract: stateless policy code, explicit serialisable state.

A policy decides which of an app's linked models ("arms", by model name) answer a query,
combines their answers, and learns from feedback. It keeps nothing between calls: what it
learns lives in a `PolicyState` it is handed and returns, so the state can be persisted
in the registry, reloaded after a restart and kept per user. Randomness comes from the
`random.Random` in the `QueryContext`, so tests drive policies with seeded generators.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

__all__ = [
    "ArmStats",
    "Combined",
    "Feedback",
    "PolicyState",
    "QueryContext",
    "Selection",
    "SelectionPolicy",
    "first_answer",
]

ArmStats = Mapping[str, float]
"""Named statistics of one arm, e.g. `{"alpha": 3.0, "beta": 1.0}`."""


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What a policy has learned: per arm, named float statistics. Immutable.

    A policy documents the statistics it keeps; an arm with no entry has none yet (every
    policy reads a missing statistic as its prior).
    """

    arms: Mapping[str, ArmStats] = field(default_factory=dict)

    def stat(self, arm: str, name: str, default: float = 0.0) -> float:
        """One statistic of one arm, or `default`."""
        stats = self.arms.get(arm)
        return default if stats is None else stats.get(name, default)

    def with_stats(self, updates: Mapping[str, ArmStats]) -> PolicyState:
        """A copy in which each arm in `updates` has those statistics replaced or added."""
        arms = dict(self.arms)
        for arm, stats in updates.items():
            arms[arm] = {**arms.get(arm, {}), **stats}
        return PolicyState(arms)

    def to_json_value(self) -> dict[str, dict[str, float]]:
        """A JSON-compatible copy."""
        return {arm: dict(stats) for arm, stats in self.arms.items()}

    def is_finite(self) -> bool:
        """Every statistic a finite number (what each policy's update keeps)."""
        return all(math.isfinite(value) for stats in self.arms.values() for value in stats.values())

    @classmethod
    def from_json_value(cls, value: Any) -> PolicyState:
        """Rebuild a state from `to_json_value`; ValueError if it is not one (a statistic
        that is not a finite number included)."""
        if not isinstance(value, dict):
            raise ValueError("a policy state must be a JSON object")
        arms: dict[str, dict[str, float]] = {}
        for arm, stats in value.items():
            if not isinstance(stats, dict):
                raise ValueError(f"the statistics of arm {arm!r} must be a JSON object")
            arms[str(arm)] = {str(name): float(number) for name, number in stats.items()}
        state = cls(arms)
        if not state.is_finite():
            raise ValueError("a policy state's statistics must be finite numbers")
        return state


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What a policy may look at when it selects: the candidates, the user, randomness.

    `arms` are the app's linked models that can be asked now, in a stable (sorted) order.
    """

    arms: tuple[str, ...]
    uid: int | None
    rng: random.Random


@dataclass(frozen=True, slots=True)
class Selection:
    """The models to ask for one query.

    The answers of `models` are combined into the reply; `shadows` are asked too, their
    answers are recorded, never returned and never waited for.
    """

    models: tuple[str, ...]
    shadows: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Combined:
    """A reply built from one or more answers, and the models whose answers it used."""

    output: Any
    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Feedback:
    """Rewards (in [0, 1] for the built-in losses, 1 best) for one earlier query.

    `rewards` holds a reward for every model whose answer was judged. `selected` is what
    the policy selected for that query; a judged model outside it (or every model, when
    `selected` is empty) was observed with certainty, which bandits that weight rewards
    by their selection probability need to know. `arms` are the candidates now.
    """

    rewards: Mapping[str, float]
    arms: tuple[str, ...]
    selected: tuple[str, ...] = ()
    uid: int | None = None

    def __post_init__(self) -> None:
        """Rewards as every policy may assume them: in [0, 1], a NaN dropped (the update
        route refuses such values; this keeps each policy's state sound whatever calls it)."""
        bounded = {
            arm: min(1.0, max(0.0, float(reward)))
            for arm, reward in self.rewards.items()
            if not math.isnan(reward)
        }
        object.__setattr__(self, "rewards", bounded)


class SelectionPolicy(Protocol):
    """Stateless selection code; every call takes the state and returns a new one.

    `name` is the policy's registered name; instances hold only validated parameters.
    """

    name: ClassVar[str]

    def select(self, state: PolicyState, query: QueryContext) -> Selection:
        """The models to ask; `query.arms` is never empty."""
        ...

    def combine(self, state: PolicyState, answers: Mapping[str, Any]) -> Combined:
        """One reply from the answers that arrived (never empty), in selection order."""
        ...

    def observe(self, state: PolicyState, feedback: Feedback) -> PolicyState:
        """The state after learning from `feedback`."""
        ...

    def describe(self, state: PolicyState, arms: Sequence[str]) -> dict[str, dict[str, float]]:
        """Per arm, what the policy believes (weights, posteriors), for metrics and info."""
        ...


def first_answer(answers: Mapping[str, Any]) -> Combined:
    """The combination of policies that ask one model: its answer as it is."""
    model, output = next(iter(answers.items()))
    return Combined(output, (model,))
