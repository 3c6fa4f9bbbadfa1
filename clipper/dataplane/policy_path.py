"""Answering a query of an app under a selection policy: select, ask, combine, mirror.

One selection per request (every input of an `input_batch` goes to the same models, so
they batch together). Each selected model version is asked through the data plane's one
entry point, `predict_then` with a `ModelRef` (its own cache, coalescing, batch queue and
deadline, as a direct query); the request waits until every selected model answered or
the deadline passed. Then, per input, the policy combines the answers that arrived: an
ensemble whose stragglers missed the deadline answers with the others (`partial`), and
only when no model answered does the app fall back to its default output. Shadows are
asked too and never waited for: a callback records each shadow's answers when they arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from clipper.core.exceptions import ClipperError
from clipper.core.types import InputBuffer
from clipper.dataplane.answers import Answers, PredictThen, ask_versions, refused_answers
from clipper.dataplane.computations import NO_MODELS
from clipper.dataplane.model_serving import Clock
from clipper.dataplane.prediction import Prediction
from clipper.dataplane.query_log import QueryLog, QueryRecord
from clipper.dataplane.routes import AppRoute
from clipper.metrics.server_metrics import ServerMetrics
from clipper.selection.base import PolicyState, QueryContext, Selection
from clipper.selection.losses import vote_key
from clipper.selection.shadow import ShadowPolicy

__all__ = ["DefaultAnswer", "PolicyPath"]

DefaultAnswer = Callable[[str, str, int], Prediction]
"""(app, explanation, query id) -> the app's default answer."""

ArmAnswers = dict[str, list[Prediction]]
"""Each asked model's predictions, one per input."""


class PolicyPath:
    """Queries of apps with a route that is not a pipeline."""

    def __init__(
        self,
        predict_then: PredictThen,
        query_log: QueryLog,
        default: DefaultAnswer,
        metrics: ServerMetrics | None,
        clock: Clock,
    ) -> None:
        self._predict_then = predict_then
        self._log = query_log
        self._default = default
        self._metrics = metrics
        self._clock = clock

    async def predict(
        self,
        route: AppRoute,
        buffers: list[InputBuffer],
        query_ids: list[int],
        uid: int | None,
        deadline: float,
    ) -> list[Prediction]:
        """Answer each input by its deadline, under the route's policy."""
        app = route.app.name
        if not route.arms:
            return [self._default(app, NO_MODELS, query_id) for query_id in query_ids]
        started = self._clock()
        state = route.book.state_for(uid)
        selection = route.config.policy.select(state, QueryContext(route.arms, uid, route.rng))
        answers = await self._ask(route, selection.models, buffers, deadline)
        predictions = [
            self._combine(route, state, selection, uid, answers, index, query_id)
            for index, query_id in enumerate(query_ids)
        ]
        if selection.shadows:
            self._mirror(route, selection.shadows, buffers, query_ids, deadline, started)
        return predictions

    async def _ask(
        self,
        route: AppRoute,
        models: tuple[str, ...],
        buffers: list[InputBuffer],
        deadline: float,
    ) -> ArmAnswers:
        self._count(route, models, len(buffers))
        versions = {arm: route.version_of(arm) for arm in models}
        return await ask_versions(self._predict_then, versions, buffers, deadline)

    @staticmethod
    def _count(route: AppRoute, models: tuple[str, ...], inputs: int) -> None:
        for arm in models:
            counter = route.counters.get(arm)
            if counter is not None:
                counter.inc(inputs)

    def _combine(
        self,
        route: AppRoute,
        state: PolicyState,
        selection: Selection,
        uid: int | None,
        answers_of: ArmAnswers,
        index: int,
        query_id: int,
    ) -> Prediction:
        """One input's answer from the selected models that answered it in time."""
        answers: dict[str, Any] = {}
        labels: dict[str, str] = {}
        reason: str | None = None
        for arm in selection.models:
            prediction = answers_of[arm][index]
            # the version that answered (under a canary rollout, not always the current one)
            labels[arm] = prediction.models[0] if prediction.models else route.labels[arm]
            if not prediction.is_default:
                answers[arm] = prediction.output
            elif reason is None:
                reason = prediction.explanation
        record = QueryRecord(route.app.name, uid, route.arms, selection.models, answers, (),
                             labels)  # fmt: skip
        self._log.remember(query_id, record)
        if not answers:
            return self._default(route.app.name, reason or NO_MODELS, query_id)
        combined = route.config.policy.combine(state, answers)
        record.returned = combined.models
        partial_answer = len(answers) < len(selection.models)
        if partial_answer and self._metrics is not None:
            self._metrics.partial_answers.labels(route.app.name).inc()
        models = tuple(labels[arm] for arm in combined.models)
        outputs = None
        if len(combined.models) > 1:  # an ensemble: each model's own output too
            outputs = {labels[a]: answers[a] for a in combined.models if a in answers}
        return Prediction(query_id, combined.output, models=models, partial=partial_answer,
                          outputs=outputs)  # fmt: skip

    def _mirror(
        self,
        route: AppRoute,
        shadows: tuple[str, ...],
        buffers: list[InputBuffer],
        query_ids: list[int],
        deadline: float,
        started: float,
    ) -> None:
        """Ask the shadows; each one's answers are recorded by a callback when they arrive."""
        self._count(route, shadows, len(buffers))
        for arm in shadows:
            model, version = route.version_of(arm)
            recorded = partial(self._shadow_answered, route, arm, query_ids, started)
            try:
                ready = self._predict_then(model, buffers, version, deadline, None, recorded)
            except ClipperError as exc:
                ready = refused_answers(len(buffers), str(exc))
            if ready is not None:
                recorded(ready)

    def _shadow_answered(
        self, route: AppRoute, arm: str, query_ids: list[int], started: float, answers: Answers
    ) -> None:
        """Record a shadow's answers: agreement with the primary, latency, for feedback."""
        latency_s = self._clock() - started
        predictions = answers if isinstance(answers, list) else [None] * len(query_ids)
        for query_id, prediction in zip(query_ids, predictions, strict=True):
            if prediction is None or prediction.is_default:
                if self._metrics is not None:
                    self._metrics.shadow_answers.labels(route.app.name, arm, "failed").inc()
            else:
                label = prediction.models[0] if prediction.models else route.labels[arm]
                self._shadow_answer(route, arm, query_id, prediction.output, latency_s, label)

    def _shadow_answer(
        self,
        route: AppRoute,
        arm: str,
        query_id: int,
        output: Any,
        latency_s: float,
        label: str,
    ) -> None:
        app = route.app.name
        record = self._log.get(query_id)
        primary = record.answers.get(record.selected[0]) if record and record.selected else None
        agreed = bool(record and record.returned) and vote_key(output) == vote_key(primary)
        self._log.add_answer(query_id, arm, output, label)
        policy = route.config.policy
        if isinstance(policy, ShadowPolicy):
            route.learn(None, lambda state: policy.record_shadow(state, arm, agreed, latency_s))
        if self._metrics is not None:
            outcome = "agree" if agreed else "disagree"
            self._metrics.shadow_answers.labels(app, arm, outcome).inc()
            self._metrics.shadow_latency.labels(app, arm).observe(latency_s)
