"""Answering a query of an app whose model is under a canary rollout (`RolloutSplit`).

One choice per request (every input of an `input_batch` goes to the same version). Each
version is asked through the computation table (its cache, coalescing, batch queue and
deadline, as a direct query) and each input's outcome and latency go into that version's
window. Nobody pays for a bad canary: the canary gets `CANARY_BUDGET_SHARE` of the query's
time, and an input it fails (raised, crashed, missed, refused) is asked of the baseline
with the rest of the deadline. In a shadow step the baseline answers and the canary's
answers, compared with the baseline's, are never returned nor waited for.

The same path answers a plain app (its `SplitRoute` names it, and each answer is
remembered in the query log with the version that gave it, so feedback by `query_id`
reaches that version's window) and, with no app (`app` None), the rolled model's share of
a selection policy's or a pipeline step's queries (their own paths remember the answers,
labelled by each Prediction's `models`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from clipper.core.exceptions import DeadlineExceeded, Overloaded
from clipper.core.types import InputBuffer
from clipper.dataplane.computations import ComputationTable
from clipper.dataplane.model_serving import Clock, ModelServing
from clipper.dataplane.prediction import Prediction
from clipper.dataplane.query_log import QueryLog, QueryRecord
from clipper.dataplane.rollout_split import Outcome, RolloutSplit, VersionWindow
from clipper.selection.losses import vote_key

__all__ = ["CANARY_BUDGET_SHARE", "AnswerOf", "RolloutPath", "SplitRoute", "outcome_of"]

CANARY_BUDGET_SHARE = 0.5
"""The share of a query's time (deadline minus arrival) the canary may take: an answer
later than that counts as missed, and the baseline is asked with the time left."""

AnswerOf = Callable[[str | None, ModelServing, bool, int, "asyncio.Future[Any]"], Prediction]
"""(app, serving, show errors, query id, computation) -> the input's answer (the data
plane's own, which may raise Overloaded for an app whose `overload` is `reject`)."""


@dataclass(frozen=True, slots=True)
class SplitRoute:
    """An app's query path under a rollout: the split and both versions' servings
    (`app` None: a model's queries asked by a policy or pipeline route)."""

    app: str | None
    split: RolloutSplit
    baseline: ModelServing
    canary: ModelServing
    baseline_cached: bool
    canary_cached: bool
    show_errors: bool
    priority: int = 0
    """The app's class: both versions' queries queue at it."""


@dataclass(slots=True)
class _Attempt:
    """Inputs asked of one version: their computations and when each one finished."""

    serving: ModelServing
    query_ids: list[int]
    futures: list[asyncio.Future[Any]]
    finished: list[float | None]


def outcome_of(future: asyncio.Future[Any]) -> Outcome:
    """What a computation gave by now."""
    if not future.done():
        return Outcome.MISSED
    error = future.exception()
    if error is None:
        return Outcome.ANSWERED
    if isinstance(error, DeadlineExceeded):
        return Outcome.MISSED
    if isinstance(error, Overloaded):
        return Outcome.REFUSED
    return Outcome.ERROR


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():  # the waiting task may have been cancelled
        done.set_result(None)


class RolloutPath:
    """Queries of apps whose model is under rollout."""

    def __init__(
        self,
        table: ComputationTable,
        query_ids: Iterator[int],
        answer: AnswerOf,
        clock: Clock,
        query_log: QueryLog,
    ) -> None:
        self._table = table
        self._query_ids = query_ids
        self._answer = answer
        self._clock = clock
        self._log = query_log

    async def predict(
        self, route: SplitRoute, buffers: list[InputBuffer], deadline: float
    ) -> list[Prediction]:
        """Answer each input by its deadline, from the version the split chooses; a plain
        app's answers are remembered for feedback."""
        predictions = await self._predict(route, buffers, deadline)
        if route.app is not None:
            self._remember(route.app, route.split.model, predictions)
        return predictions

    def _remember(self, app: str, model: str, predictions: list[Prediction]) -> None:
        for prediction in predictions:
            if not prediction.is_default and prediction.models:
                answers = {model: prediction.output}
                labels = {model: prediction.models[0]}
                record = QueryRecord(app, None, (model,), (model,), answers, (model,), labels)
                self._log.remember(prediction.query_id, record)

    async def _predict(
        self, route: SplitRoute, buffers: list[InputBuffer], deadline: float
    ) -> list[Prediction]:
        split = route.split
        started = self._clock()
        if split.shadow:
            return await self._shadowed(route, buffers, deadline, started)
        if not split.to_canary():
            return await self._on_baseline(route, buffers, deadline, started)
        canary_deadline = started + (deadline - started) * CANARY_BUDGET_SHARE
        canary = self._start(route, route.canary, route.canary_cached, buffers, canary_deadline)
        await self._wait(canary, canary_deadline)
        self._observe(split.canary_window, canary, started)
        failed = [i for i, future in enumerate(canary.futures) if outcome_of(future).failed]
        retried: dict[int, Prediction] = {}
        if failed and self._clock() < deadline:
            split.retried += len(failed)
            retry = self._start(route, route.baseline, route.baseline_cached,
                                [buffers[i] for i in failed], deadline)  # fmt: skip
            await self._wait(retry, deadline)
            retried = dict(zip(failed, self._answers(route, retry), strict=True))
        return [
            retried[index] if index in retried else self._one(route, canary, index)
            for index in range(len(buffers))
        ]

    async def _on_baseline(
        self, route: SplitRoute, buffers: list[InputBuffer], deadline: float, started: float
    ) -> list[Prediction]:
        baseline = self._start(route, route.baseline, route.baseline_cached, buffers, deadline)
        await self._wait(baseline, deadline)
        self._observe(route.split.baseline_window, baseline, started)
        return self._answers(route, baseline)

    async def _shadowed(
        self, route: SplitRoute, buffers: list[InputBuffer], deadline: float, started: float
    ) -> list[Prediction]:
        """The baseline answers; the canary's answers are compared when they arrive."""
        baseline = self._start(route, route.baseline, route.baseline_cached, buffers, deadline)
        canary = self._start(route, route.canary, route.canary_cached, buffers, deadline)
        await self._wait(baseline, deadline)
        self._observe(route.split.baseline_window, baseline, started)

        def compare() -> None:
            self._compare(route.split, baseline, canary, started)

        pending = [future for future in canary.futures if not future.done()]
        if pending:
            self._table.when_all(pending, deadline, compare)
        else:
            compare()
        return self._answers(route, baseline)

    def _compare(
        self, split: RolloutSplit, baseline: _Attempt, canary: _Attempt, started: float
    ) -> None:
        self._observe(split.canary_window, canary, started)
        for ours, theirs in zip(baseline.futures, canary.futures, strict=True):
            if outcome_of(ours) is Outcome.ANSWERED and outcome_of(theirs) is Outcome.ANSWERED:
                split.canary_window.compare(vote_key(ours.result()) == vote_key(theirs.result()))

    def _start(
        self,
        route: SplitRoute,
        serving: ModelServing,
        use_cache: bool,
        buffers: list[InputBuffer],
        deadline: float,
    ) -> _Attempt:
        query_ids = list(itertools.islice(self._query_ids, len(buffers)))
        futures = self._table.start(
            serving, use_cache, buffers, query_ids, deadline, route.app or "", route.priority
        )
        attempt = _Attempt(serving, query_ids, futures, [None] * len(futures))
        for index, future in enumerate(futures):
            if future.done():
                attempt.finished[index] = self._clock()
            else:
                future.add_done_callback(partial(self._finished, attempt, index))
        return attempt

    def _finished(self, attempt: _Attempt, index: int, _: object) -> None:
        attempt.finished[index] = self._clock()

    async def _wait(self, attempt: _Attempt, deadline: float) -> None:
        """Until every computation of the attempt is done, or the deadline passes."""
        pending = [future for future in attempt.futures if not future.done()]
        if not pending:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._table.when_all(pending, deadline, partial(_settle, done))
        await done

    def _observe(self, window: VersionWindow, attempt: _Attempt, started: float) -> None:
        now = self._clock()
        for future, finished in zip(attempt.futures, attempt.finished, strict=True):
            outcome = outcome_of(future)
            if outcome is Outcome.ANSWERED:
                window.observe(outcome, (finished or now) - started)
            elif outcome is Outcome.MISSED:
                window.observe(outcome, now - started)
            else:
                window.observe(outcome, None)

    def _answers(self, route: SplitRoute, attempt: _Attempt) -> list[Prediction]:
        return [self._one(route, attempt, index) for index in range(len(attempt.futures))]

    def _one(self, route: SplitRoute, attempt: _Attempt, index: int) -> Prediction:
        future, query_id = attempt.futures[index], attempt.query_ids[index]
        return self._answer(route.app, attempt.serving, route.show_errors, query_id, future)
