"""Per-input computations on one model version: cache, coalescing, batch queue, waiting.

Shared by every route of the dataplane (one model, a selection policy, a pipeline), so
each model version asked keeps its own cache, batching and deadlines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from clipper.batching.queue import PendingQuery
from clipper.core.exceptions import (
    DeadlineExceeded,
    ModelError,
    ModelRaised,
    Overloaded,
    ReplicaCrashed,
)
from clipper.core.types import InputBuffer, ModelId
from clipper.dataplane.cache import PredictionCache
from clipper.dataplane.cold_starts import cold_explanation
from clipper.dataplane.deadlines import DeadlineTimer, Waiter
from clipper.dataplane.model_serving import Clock, ModelServing

__all__ = ["NO_MODELS", "SLO_MISSED", "ComputationTable", "failure_reason", "slo_missed"]

NO_MODELS = "No connected models found for query"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"
"""Clipper's explanation of a missed deadline; the query surfaces add the budget to it
(`slo_missed`), so it stays a prefix a Clipper client can match."""


def slo_missed(budget_us: int, slo_us: int) -> str:
    """`SLO_MISSED` stating the budget a query missed: the app's SLO, or the shorter
    timeout the request asked for."""
    if budget_us >= slo_us:
        return f"{SLO_MISSED} ({_duration(slo_us)})"
    return (
        f"{SLO_MISSED} ({_duration(budget_us)}, the request's timeout; "
        f"the SLO is {_duration(slo_us)})"
    )


def _duration(us: int) -> str:
    return f"{us} µs" if us < 1000 else f"{us / 1000:g} ms"


class ComputationTable:
    """The computations in flight, by model version and input, and the cache they fill.

    Per input: a cache hit answers at once; an identical computation already in flight is
    shared; otherwise a new computation is queued. Computations are resolved only by the
    model side, so answers that arrive after a client's deadline still fill the cache.
    """

    def __init__(
        self,
        cache: PredictionCache,
        live: Mapping[ModelId, object],
        clock: Clock = time.monotonic,
    ) -> None:
        """`live` holds the versions still registered: only their answers are cached."""
        self.cache = cache
        self._live = live
        self._clock = clock
        self._in_flight: dict[tuple[ModelId, bytes], asyncio.Future[Any]] = {}
        self._deadlines = DeadlineTimer(clock)

    def start(
        self,
        serving: ModelServing,
        use_cache: bool,
        buffers: list[InputBuffer],
        query_ids: list[int],
        deadline: float,
        app: str = "",
        priority: int = 0,
    ) -> list[asyncio.Future[Any]]:
        """One future per input: a cached answer, a shared in-flight one, or a new one
        queued at `priority`. New ones that admission control refuses are failed at once
        with `Overloaded` (counted for `app`)."""
        loop = asyncio.get_running_loop()
        metrics = serving.metrics
        futures: list[asyncio.Future[Any]] = []
        fresh: list[PendingQuery] = []
        for query_id, buffer in zip(query_ids, buffers, strict=True):
            future: asyncio.Future[Any]
            if use_cache:
                data = buffer if isinstance(buffer, bytes) else buffer.tobytes()  # a view
                # is not hashable, and the cache keeps a copy anyway
                cached = self.cache.get(serving.model_id, data)
                if cached is not PredictionCache.MISSING:
                    future = loop.create_future()
                    future.set_result(cached)
                    futures.append(future)
                    if metrics:
                        metrics.cache_hits.inc()
                    continue
                key = (serving.model_id, data)
                shared = self._in_flight.get(key)
                if shared is not None:
                    futures.append(shared)
                    continue
                if metrics:
                    metrics.cache_misses.inc()
                future = loop.create_future()
                future.add_done_callback(partial(self._computed, key))
                self._in_flight[key] = future
            else:
                future = loop.create_future()
            fresh.append(PendingQuery(query_id, buffer, deadline, future, priority))
            futures.append(future)
        if fresh:
            refused_at = _admit(serving, len(fresh), deadline, priority)
            if refused_at is None:
                serving.submit(fresh)
            else:
                error = serving.refuse(app, refused_at, priority)
                for query in fresh:
                    query.future.set_exception(error)
        return futures

    def start_alone(
        self,
        serving: ModelServing,
        buffer: InputBuffer,
        query_id: int,
        deadline: float,
        callback: Callable[[], None],
        priority: int = 0,
    ) -> asyncio.Future[Any]:
        """One uncached input as a computation of its own, and `when_all` on it in one: the
        common query (admitted by the caller). The dispatcher that settles it calls the
        waiter straight away (no done callback, no loop iteration in between)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        query = PendingQuery(query_id, buffer, deadline, future, priority)
        waiter = Waiter([future], callback, watch=False)
        query.on_settled = waiter.settled
        serving.submit_one(query)
        self._deadlines.add(deadline, waiter)
        return future

    def _computed(self, key: tuple[ModelId, bytes], future: Any) -> None:
        """A cached computation finished: retire it from in-flight, cache a real output."""
        if self._in_flight.get(key) is future:
            del self._in_flight[key]
        if future.cancelled() or future.exception() is not None:
            return
        if key[0] in self._live:
            self.cache.put(key[0], key[1], future.result())

    def when_all(
        self, futures: list[asyncio.Future[Any]], deadline: float, callback: Callable[[], None]
    ) -> None:
        """Call `callback` once, when every future is done or the deadline passes,
        whichever comes first: no task and no timer of its own (see `DeadlineTimer`)."""
        self._deadlines.add(deadline, Waiter(futures, callback))


def _admit(serving: ModelServing, count: int, deadline: float, priority: int) -> int | None:
    """None when `count` new inputs of `priority` are admitted, else the `queued` count to
    refuse them with (see `ModelServing.admit_ranked`)."""
    if priority > serving.queue.lowest:
        return serving.admit_ranked(priority, count, deadline)
    queued = len(serving.queue) + count - 1
    return None if serving.admission.admits(queued, deadline) else queued


def failure_reason(
    serving: ModelServing, future: asyncio.Future[Any], query_id: int, show_errors: bool
) -> str | None:
    """Why a computation gave no output by now (`default_explanation`); None if it did.

    An exception the model raised is told by its type and the query's id unless
    `show_errors`: its text may hold the model's data, and the server log has it (see
    `ModelServing`, which logs it with the ids of the batch's queries)."""
    if not future.done():
        return _unanswered(serving)
    error = future.exception()
    if error is None:
        return None
    if isinstance(error, Overloaded):
        return str(error)
    if isinstance(error, DeadlineExceeded):
        return _unanswered(serving)
    if isinstance(error, ModelRaised) and not show_errors:
        return (
            f"Model error: {error.error_type} raised by {serving.model_id} "
            f"(its message is in the server log, query {query_id})"
        )
    if isinstance(error, ModelError):
        return f"Model error: {error}"
    if isinstance(error, ReplicaCrashed):
        return f"Replica crashed: {error}"
    return f"{type(error).__name__}: {error}"


def _unanswered(serving: ModelServing) -> str:
    """Why a query's deadline passed before its output: the SLO, no replica at all, or a
    cold start (the version was scaled to zero and its replica is starting)."""
    if serving.ready_replicas:
        return SLO_MISSED
    return cold_explanation(serving.model_id) if serving.waking else NO_MODELS
