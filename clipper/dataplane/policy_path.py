"""Answering a query of an app under a selection policy: select, ask, combine, mirror.

One selection per request (every input of an `input_batch` goes to the same models, so
they batch together). Each selected model version is asked through the same computation
table as the direct path (its own cache, coalescing, batch queue and deadline); the
request waits, with one timer, until every selected model answered or the deadline
passed. Then, per input, the policy combines the answers that arrived: an ensemble whose
stragglers missed the deadline answers with the others (`partial`), and only when no
model answered does the app fall back to its default output. Shadows are asked too and
never waited for: a callback records each shadow answer when it arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from clipper.core.types import InputBuffer
from clipper.dataplane.computations import NO_MODELS, ComputationTable, failure_reason
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

Futures = dict[str, list[asyncio.Future[Any]]]


class PolicyPath:
    """Queries of apps with a route that is not a pipeline."""

    def __init__(
        self,
        table: ComputationTable,
        query_log: QueryLog,
        default: DefaultAnswer,
        metrics: ServerMetrics | None,
        clock: Clock,
    ) -> None:
        self._table = table
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
        futures = self._ask(route, selection.models, buffers, query_ids, deadline)
        pending = [f for group in futures.values() for f in group if not f.done()]
        if pending:
            await self._table.wait_all(pending, deadline)
        predictions = [
            self._combine(route, state, selection, uid, futures, index, query_id)
            for index, query_id in enumerate(query_ids)
        ]
        if selection.shadows:
            self._mirror(route, selection.shadows, buffers, query_ids, deadline, started)
        return predictions

    def _ask(
        self,
        route: AppRoute,
        models: Iterable[str],
        buffers: list[InputBuffer],
        query_ids: list[int],
        deadline: float,
    ) -> Futures:
        futures = {}
        for arm in models:
            serving = route.servings[arm]
            futures[arm] = self._table.start(
                serving, route.use_cache[arm], buffers, query_ids, deadline
            )
            counter = route.counters.get(arm)
            if counter is not None:
                counter.inc(len(buffers))
        return futures

    def _combine(
        self,
        route: AppRoute,
        state: PolicyState,
        selection: Selection,
        uid: int | None,
        futures: Futures,
        index: int,
        query_id: int,
    ) -> Prediction:
        """One input's answer from the selected models that answered it in time."""
        answers: dict[str, Any] = {}
        reason: str | None = None
        for arm in selection.models:
            future = futures[arm][index]
            why = failure_reason(route.servings[arm], future)
            if why is None:
                answers[arm] = future.result()
            elif reason is None:
                reason = why
        record = QueryRecord(route.app.name, uid, route.arms, selection.models, answers, (),
                             {arm: route.labels[arm] for arm in selection.models})  # fmt: skip
        self._log.remember(query_id, record)
        if not answers:
            return self._default(route.app.name, reason or NO_MODELS, query_id)
        combined = route.config.policy.combine(state, answers)
        record.returned = combined.models
        partial_answer = len(answers) < len(selection.models)
        if partial_answer and self._metrics is not None:
            self._metrics.partial_answers.labels(route.app.name).inc()
        models = tuple(route.labels[arm] for arm in combined.models)
        return Prediction(query_id, combined.output, models=models, partial=partial_answer)

    def _mirror(
        self,
        route: AppRoute,
        shadows: tuple[str, ...],
        buffers: list[InputBuffer],
        query_ids: list[int],
        deadline: float,
        started: float,
    ) -> None:
        """Ask the shadows; each answer is recorded by a callback when it arrives."""
        futures = self._ask(route, shadows, buffers, query_ids, deadline)
        for arm, group in futures.items():
            for query_id, future in zip(query_ids, group, strict=True):
                future.add_done_callback(
                    partial(self._shadow_answered, route, arm, query_id, started)
                )

    def _shadow_answered(
        self, route: AppRoute, arm: str, query_id: int, started: float, future: Any
    ) -> None:
        """Record a shadow's answer: agreement with the primary, latency, for feedback."""
        app = route.app.name
        if future.cancelled() or future.exception() is not None:
            if self._metrics is not None:
                self._metrics.shadow_answers.labels(app, arm, "failed").inc()
            return
        output = future.result()
        latency_s = self._clock() - started
        record = self._log.get(query_id)
        primary = record.answers.get(record.selected[0]) if record and record.selected else None
        agreed = bool(record and record.returned) and vote_key(output) == vote_key(primary)
        self._log.add_answer(query_id, arm, output, route.labels[arm])
        policy = route.config.policy
        if isinstance(policy, ShadowPolicy):
            route.learn(None, lambda state: policy.record_shadow(state, arm, agreed, latency_s))
        if self._metrics is not None:
            outcome = "agree" if agreed else "disagree"
            self._metrics.shadow_answers.labels(app, arm, outcome).inc()
            self._metrics.shadow_latency.labels(app, arm).observe(latency_s)
