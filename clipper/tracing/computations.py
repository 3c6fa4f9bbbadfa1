"""The data plane's side of tracing: a span per model asked, its queue wait, and the batch.

`TracedComputations` is the data plane's computation table with one addition: a query
traced (`CURRENT` set) gets a `model` span per model version asked, a child of its request,
carrying `clipper.cache` (hit, shared, miss, off) and ended when the computation settles.
`BatchTracer` is each version's `on_batch` hook: for a batch that carries traced queries it
draws each one's `clipper.queue_wait` (enqueued to sent) and one `batch` span, a child of
the first traced query's model span and LINKED to every traced query's model span, with
`clipper.batch_size`; its `compute` child is the round trip to the worker (sent to reply).
Both end when the reply comes, before the batch's queries are settled, so compute lies in
the batch and the batch in each model span. Every span is a draft (clipper.tracing.spans)
handed to the exporter when it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from clipper.batching.queue import PendingQuery
from clipper.core.types import InputBuffer, ModelId
from clipper.dataplane.cache import PredictionCache
from clipper.dataplane.computations import ComputationTable
from clipper.dataplane.model_serving import Clock, ModelServing
from clipper.rpc.protocol import BatchError
from clipper.rpc.server import BatchOutcome
from clipper.tracing.requests import CURRENT, RequestTrace
from clipper.tracing.spans import SpanDraft, SpanOutput

__all__ = ["BatchTracer", "Rider", "TracedComputations"]


class Rider:
    """A traced query's computation on one model version, waiting for its batch."""

    __slots__ = ("enqueued_ns", "replied_ns", "request", "span")

    def __init__(self, request: RequestTrace, span: SpanDraft, enqueued_ns: int) -> None:
        self.request = request
        self.span = span
        self.enqueued_ns = enqueued_ns
        self.replied_ns: int | None = None  # when its batch's reply came (its span's end)


class BatchTracer:
    """The traced computations in flight (future -> riders) and the batches they ride in.

    Invariant: a computation's riders are forgotten when it settles, so the map holds only
    computations in flight."""

    def __init__(self, output: SpanOutput) -> None:
        self.output = output
        self.riders: dict[asyncio.Future[Any], list[Rider]] = {}

    def ride(self, future: asyncio.Future[Any], rider: Rider) -> None:
        """Follow a traced computation until it settles."""
        riders = self.riders.get(future)
        if riders is None:
            self.riders[future] = [rider]
        else:
            riders.append(rider)
        future.add_done_callback(partial(_settled, self.riders.pop, rider))

    def sent(
        self,
        model_id: ModelId,
        replica: int,
        batch: list[PendingQuery],
        outcome: asyncio.Future[BatchOutcome],
    ) -> None:
        """A batch went to a replica (ModelServing.on_batch): trace it if it carries a
        traced query."""
        if not self.riders:
            return
        riders = [rider for query in batch for rider in self.riders.get(query.future, ())]
        if not riders:
            return
        sent_ns, output, size = time.time_ns(), self.output, len(batch)
        for rider in riders:
            rider.span.attributes["clipper.batch_size"] = size
            output.emit("clipper.queue_wait", rider.span.context, rider.enqueued_ns, sent_ns)
        attributes: dict[str, Any] = {
            "clipper.model": model_id.name,
            "clipper.version": model_id.version,
            "clipper.batch_size": size,
            "clipper.replica": replica,
        }
        links = [Link(rider.span.context) for rider in riders]
        batch_span = output.start(f"batch {model_id}", riders[0].span.context,
                                  SpanKind.INTERNAL, sent_ns, attributes, links)  # fmt: skip
        compute = output.start("clipper.compute", batch_span.context, SpanKind.CLIENT, sent_ns,
                               {"clipper.replica": replica})  # fmt: skip
        outcome.add_done_callback(partial(_replied, output, riders, batch_span, compute))


def _replied(
    output: SpanOutput,
    riders: list[Rider],
    batch_span: SpanDraft,
    compute: SpanDraft,
    outcome: asyncio.Future[BatchOutcome],
) -> None:
    """The worker answered (or went away): end `compute`, then the batch, and date the
    riders' answers. This runs before the dispatcher's callback (added after it) settles
    the queries, so compute lies in the batch, the batch in each model span, and each
    model span in its request (whose reply the settling may send at once)."""
    if outcome.cancelled() or outcome.exception() is not None:
        compute.set_status(Status(StatusCode.ERROR, "no reply from the replica"))
    elif isinstance(outcome.result(), BatchError):
        compute.set_status(Status(StatusCode.ERROR, "the model raised"))
    replied_ns = time.time_ns()
    output.end(compute, replied_ns)
    output.end(batch_span, replied_ns)
    for rider in riders:
        rider.replied_ns = replied_ns
        rider.request.answered_ns = max(rider.request.answered_ns, replied_ns)


def _settled(forget: Any, rider: Rider, future: asyncio.Future[Any]) -> None:
    forget(future, None)
    _end_model_span(rider.request, rider.span, future, rider.replied_ns)


def _end_model_span(
    request: RequestTrace, span: SpanDraft, future: asyncio.Future[Any], end_ns: int | None = None
) -> None:
    now_ns = end_ns or time.time_ns()
    if future.cancelled():
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
    elif (error := future.exception()) is not None:
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    request.answered_ns = max(request.answered_ns, now_ns)
    request.output.end(span, now_ns)


class TracedComputations(ComputationTable):
    """The computation table, tracing the computations of traced requests (see above);
    an untraced request pays one context-variable lookup here."""

    def __init__(
        self,
        cache: PredictionCache,
        live: Mapping[ModelId, object],
        clock: Clock,
        batches: BatchTracer,
    ) -> None:
        super().__init__(cache, live, clock)
        self.batches = batches

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
        request = CURRENT.get()
        if request is None:
            return super().start(serving, use_cache, buffers, query_ids, deadline, app, priority)
        model_id = serving.model_id
        shared = [use_cache and self._in_flight.get((model_id, _data(b))) for b in buffers]
        now_ns = time.time_ns()
        futures = super().start(serving, use_cache, buffers, query_ids, deadline, app, priority)
        for query_id, future, was_shared in zip(query_ids, futures, shared, strict=True):
            if not use_cache:
                cache = "off"
            elif was_shared:
                cache = "shared"
            else:
                cache = "hit" if future.done() and future.exception() is None else "miss"
            self._follow(request, serving, future, query_id, cache, now_ns)
        return futures

    def start_alone(
        self,
        serving: ModelServing,
        buffer: InputBuffer,
        query_id: int,
        deadline: float,
        callback: Any,
        priority: int = 0,
    ) -> asyncio.Future[Any]:
        request = CURRENT.get()
        if request is None:
            return super().start_alone(serving, buffer, query_id, deadline, callback, priority)
        now_ns = time.time_ns()
        future = super().start_alone(serving, buffer, query_id, deadline, callback, priority)
        self._follow(request, serving, future, query_id, "off", now_ns)
        return future

    def _follow(
        self,
        request: RequestTrace,
        serving: ModelServing,
        future: asyncio.Future[Any],
        query_id: int,
        cache: str,
        now_ns: int,
    ) -> None:
        model_id = serving.model_id
        request.asked(str(model_id), now_ns)
        span = request.child(
            f"model {model_id}",
            now_ns,
            {
                "clipper.model": model_id.name,
                "clipper.version": model_id.version,
                "clipper.query_id": query_id,
                "clipper.cache": cache,
            },
        )
        if future.done():  # a cache hit, or refused at once
            _end_model_span(request, span, future)
            return
        if serving.on_batch is None:
            serving.on_batch = self.batches.sent
        self.batches.ride(future, Rider(request, span, now_ns))


def _data(buffer: InputBuffer) -> bytes:
    """The cache's key of an input (as ComputationTable.start makes it)."""
    return buffer if isinstance(buffer, bytes) else buffer.tobytes()
