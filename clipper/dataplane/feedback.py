"""Feedback (`POST /<app>/update`): labels or rewards become policy-state updates.

Two forms. With the `query_id` of an earlier answer (remembered in the query log), a
`label` judges every model that answered that query (shadows included) through the app's
loss, and a `reward` is given to the models whose answers made the reply. With Clipper's
`{"uid", "input", "label"}`, every candidate model is asked for that input (usually a
cache hit) and judged: full-information feedback, which the policy learns from without
importance weighting. The policy updates its in-memory state; persistence is written
behind (see DataPlane.take_dirty_states).

A model under a canary rollout: each reward also goes to the window of the version that
answered (the query log's labels; for a pipeline's answer, every step's version), which
the rollout's reward checks judge. The policy learns per model, whichever version answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clipper.core.exceptions import Conflict, InvalidInput
from clipper.dataplane.answers import PredictThen, ask_versions
from clipper.dataplane.model_serving import Clock
from clipper.dataplane.pipeline import PipelinePath
from clipper.dataplane.prediction import Prediction
from clipper.dataplane.query_log import QueryLog
from clipper.dataplane.rollout_split import RolloutSplit
from clipper.dataplane.routes import AppRoute
from clipper.metrics.server_metrics import ServerMetrics
from clipper.selection.base import Feedback

__all__ = ["FeedbackPath", "FeedbackRequest", "LearnHook"]


@dataclass(frozen=True, slots=True)
class FeedbackRequest:
    """A decoded update: `query_id`, or `buffer` (the encoded input); a `label` (when
    `has_label`) or a `reward`; optionally the user's `uid`."""

    query_id: int | None = None
    uid: int | None = None
    buffer: bytes | None = None
    label: Any = None
    has_label: bool = False
    reward: float | None = None


SplitOf = Callable[[str], RolloutSplit | None]
"""A model's canary rollout split, or None."""
LearnHook = Callable[[str, str, Feedback], None]
"""(app, policy name, feedback) of each update a policy learned from."""


@dataclass(frozen=True, slots=True)
class _Judged:
    """One feedback's rewards per model (arm), and the versions that earned them: each
    arm's `labels`, or, for a pipeline's answer, every step's (`steps`)."""

    rewards: dict[str, float]
    labels: Mapping[str, str]
    arms: tuple[str, ...]
    selected: tuple[str, ...]
    uid: int | None
    steps: tuple[str, ...] = ()

    def earners(self) -> Iterable[tuple[str, float]]:
        """(`model:version`, reward) for each version an answer's reward is owed to."""
        for arm, reward in self.rewards.items():
            for label in self.steps or (self.labels.get(arm, ""),):
                yield label, reward


class FeedbackPath:
    """Turns feedback into rewards and policy updates."""

    def __init__(
        self,
        predict_then: PredictThen,
        query_log: QueryLog,
        pipelines: PipelinePath,
        metrics: ServerMetrics | None,
        clock: Clock = time.monotonic,
        split_of: SplitOf = lambda model: None,
    ) -> None:
        self._clock = clock
        self._predict_then = predict_then
        self._log = query_log
        self._pipelines = pipelines
        self._metrics = metrics
        self._split_of = split_of
        self.on_learn: LearnHook | None = None
        """Told each feedback a policy learned from (several frontends share it)."""

    async def update(self, route: AppRoute, request: FeedbackRequest) -> dict[str, Any]:
        """Apply one feedback; the JSON reply names each judged model and its reward. A
        plain app (policy `single`, no pipeline) learns nothing: feedback on an answer it
        does not remember (one given outside a canary rollout) is accepted and judges none."""
        plain = route.config.name == "single" and not route.is_pipeline
        if plain and request.query_id is not None and self._log.get(request.query_id) is None:
            return {"query_id": request.query_id, "policy": "single", "rewards": {}}
        if request.query_id is not None:
            judged = self._judge_answer(route, request)
        else:
            judged = await self._judge_input(route, request)
        rewards, labels, uid = judged.rewards, judged.labels, judged.uid
        policy = route.config.policy
        if rewards and route.config.name != "single":
            feedback = Feedback(rewards, judged.arms, judged.selected, uid)
            route.learn(uid, lambda state: policy.observe(state, feedback))
            if self.on_learn is not None:
                self.on_learn(route.app.name, route.config.name, feedback)
        self._to_rollouts(judged)
        self._count(route.app.name, rewards)
        return {
            "query_id": request.query_id,
            "policy": route.config.name,
            "rewards": {labels[arm]: reward for arm, reward in rewards.items()},
        }

    def _to_rollouts(self, judged: _Judged) -> None:
        """Each reward to the window of the version that earned it, under a rollout."""
        for label, reward in judged.earners():
            model, _, version = label.partition(":")
            split = self._split_of(model)
            window = split.window_of(version) if split is not None else None
            if window is not None:
                window.reward(reward)

    def _judge_answer(self, route: AppRoute, request: FeedbackRequest) -> _Judged:
        record = self._log.get(request.query_id) if request.query_id is not None else None
        if record is None or record.app != route.app.name:
            raise InvalidInput(
                f"query_id {request.query_id} is not a recent answer of application "
                f"'{route.app.name}' under a selection policy or pipeline (the server "
                f"remembers the last {self._log.capacity} of them)"
            )
        if record.judged:
            raise Conflict(
                f"feedback on query_id {request.query_id} was already counted (each answer "
                f"is judged once)"
            )
        record.judged = True
        if request.has_label:
            loss = route.config.loss
            rewards = {arm: loss(output, request.label) for arm, output in record.answers.items()}
        else:
            reward = float(request.reward or 0.0)
            rewards = {arm: reward for arm in record.returned}
        uid = request.uid if request.uid is not None else record.uid
        return _Judged(rewards, record.labels, record.arms, record.selected, uid, record.steps)

    async def _judge_input(self, route: AppRoute, request: FeedbackRequest) -> _Judged:
        if request.buffer is None or not request.has_label:
            raise InvalidInput("feedback needs a query_id, or an input and a label")
        deadline = self._clock() + route.app.latency_slo_us / 1e6
        answers = await self._answers(route, request.buffer, deadline)
        loss = route.config.loss
        rewards = {
            arm: loss(prediction.output, request.label) for arm, prediction in answers.items()
        }
        labels = {**route.labels, **{arm: prediction.models[-1] for arm, prediction
                                     in answers.items() if prediction.models}}  # fmt: skip
        steps = next(iter(answers.values())).models if route.is_pipeline and answers else ()
        return _Judged(rewards, labels, route.arms, (), request.uid, steps)

    async def _answers(
        self, route: AppRoute, buffer: bytes, deadline: float
    ) -> dict[str, Prediction]:
        """What each candidate model answers for `buffer` (those that answer in time)."""
        if route.is_pipeline:
            [prediction] = await self._pipelines.predict(
                route, [buffer], [0], None, deadline, False
            )
            return {} if prediction.is_default else {route.arms[0]: prediction}
        versions = {arm: route.version_of(arm) for arm in route.arms}
        answers = await ask_versions(self._predict_then, versions, [buffer], deadline)
        return {
            arm: prediction for arm, [prediction] in answers.items() if not prediction.is_default
        }

    def _count(self, app: str, rewards: dict[str, float]) -> None:
        if self._metrics is None:
            return
        for arm, reward in rewards.items():
            self._metrics.feedback.labels(app, arm).inc()
            self._metrics.rewards.labels(app, arm).inc(max(0.0, reward))
