"""An in-process world for selection policies: models right with given probabilities.

Each query has a true label among ten classes; a model answers it right with its
accuracy, else with a uniformly chosen wrong label. Feedback (the label, judged by exact
match) follows every answer, as the policy would get it over `POST /<app>/update`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from clipper.selection import configure
from clipper.selection.base import Feedback, PolicyState, QueryContext, SelectionPolicy

ARMS = ("m1", "m2", "m3")
CLASSES = 10


@dataclass
class Trace:
    """What happened to each query: the models asked, and who was right."""

    asked: list[tuple[str, ...]] = field(default_factory=list)
    reply_right: list[bool] = field(default_factory=list)
    model_right: list[dict[str, bool]] = field(default_factory=list)

    def share(self, model: str, start: int, stop: int) -> float:
        """The share of queries in [start, stop) that `model` answered alone."""
        window = self.asked[start:stop]
        return sum(asked == (model,) for asked in window) / len(window)

    def accuracy(self, start: int, stop: int, model: str | None = None) -> float:
        """The reply's (or one model's) accuracy on queries in [start, stop)."""
        if model is None:
            right = self.reply_right[start:stop]
        else:
            right = [judged[model] for judged in self.model_right[start:stop]]
        return sum(right) / len(right)


@dataclass
class World:
    """Runs a policy against simulated models with seeded generators."""

    policy: SelectionPolicy
    seed: int = 0
    state: PolicyState = field(default_factory=PolicyState)
    trace: Trace = field(default_factory=Trace)

    def __post_init__(self) -> None:
        self.policy_rng = random.Random(self.seed)
        self.world_rng = random.Random(self.seed + 1_000_003)

    @classmethod
    def of(cls, name: str, seed: int = 0, **params: object) -> World:
        return cls(configure(name, params).policy, seed)

    def answer(self, accuracy: float, truth: int) -> int:
        if self.world_rng.random() < accuracy:
            return truth
        return (truth + 1 + self.world_rng.randrange(CLASSES - 1)) % CLASSES

    def run(self, accuracies: Mapping[str, float], queries: int) -> Trace:
        """`queries` queries, each followed by feedback."""
        for _ in range(queries):
            truth = self.world_rng.randrange(CLASSES)
            selection = self.policy.select(self.state, QueryContext(ARMS, None, self.policy_rng))
            answers = {model: self.answer(accuracies[model], truth) for model in selection.models}
            reply = self.policy.combine(self.state, answers)
            rewards = {model: float(output == truth) for model, output in answers.items()}
            feedback = Feedback(rewards, ARMS, selection.models)
            self.state = self.policy.observe(self.state, feedback)
            self.trace.asked.append(selection.models)
            self.trace.reply_right.append(reply.output == truth)
            self.trace.model_right.append({model: right == 1.0 for model, right in rewards.items()})
        return self.trace
