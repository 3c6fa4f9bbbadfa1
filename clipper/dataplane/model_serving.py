"""Serving one model version: its batch queue and the dispatchers of its replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from clipper.batching.admission import UNBOUNDED, Admission, derived_max_queued
from clipper.batching.queue import BatchQueue, PendingQuery
from clipper.batching.sizing import AimdBatchSizer, BatchSizer, FixedBatchSizer, make_sizer
from clipper.core.exceptions import (
    DeadlineExceeded,
    ModelError,
    ModelRaised,
    Overloaded,
    ReplicaCrashed,
    ReplicaError,
)
from clipper.core.types import InputType, ModelId
from clipper.dataplane.load import LoadCounters
from clipper.metrics.server_metrics import ModelMetrics
from clipper.rpc.protocol import WORKER_ERROR_TYPES, BatchError, encode_batch
from clipper.rpc.server import BatchOutcome, WorkerChannel

__all__ = ["OVERLOADED", "BatchPolicy", "ModelServing", "ReplicaHandle"]

OVERLOADED = "Server overloaded"
"""The start of a refused query's explanation (see `ModelServing.refuse`)."""

log = logging.getLogger("clipper.dataplane")
Clock = Callable[[], float]
BatchHook = Callable[[ModelId, int, list[PendingQuery], "asyncio.Future[BatchOutcome]"], None]
"""Told of each batch sent: (version, replica, its queries, its outcome); clipper.tracing's."""
StreamDispatched = Callable[[WorkerChannel, int, int], None]
"""Told where a streamed query went: (its replica's channel, the batch id, its index)."""
STEPS_PER_FIRST_PIECE = 3
"""A continuous batch's step latency target is the SLO over this: a query that joins waits
for the step in progress, then runs its own first step; the third share is left for its
wait in the queue, its start and the transport."""


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a model version's queries are batched and admitted; changeable at run time.

    `slo_s` is the shortest SLO of the apps using the version (the batch sizing's target),
    `longest_slo_s` the longest (the derived queue bound's); `max_queued` 0 derives it."""

    batch_size: int = -1
    wait_timeout_s: float = 0.0
    max_in_flight: int = 1
    slo_s: float = 0.1
    longest_slo_s: float = 0.1
    max_queued: int = 0


class ReplicaHandle:
    """A connected replica: its channel, batch sizer and batches in flight.

    A continuous-batching replica (`max_sequences` > 0: its worker runs a step model, see
    clipper.worker.continuous) takes one query per batch, and `in_flight` counts its
    running sequences; its `sizer` is then the running batch's limit, learnt from the steps
    the worker reports (`ModelServing.observe_step`)."""

    __slots__ = (
        "channel", "drained", "draining", "in_flight", "max_sequences", "replica_id", "sizer",
    )  # fmt: skip

    def __init__(
        self, replica_id: int, channel: WorkerChannel, sizer: BatchSizer, max_sequences: int = 0
    ) -> None:
        self.replica_id = replica_id
        self.channel = channel
        self.sizer = sizer
        self.max_sequences = max_sequences
        self.in_flight = 0
        self.draining = False
        self.drained: asyncio.Future[None] | None = None  # set by `drain`, resolved at 0

    @property
    def accepting(self) -> bool:
        """True while the replica takes new batches."""
        return not self.channel.closed and not self.draining

    @property
    def continuous(self) -> bool:
        """Whether new queries join this replica's running batch between its steps."""
        return self.max_sequences > 0

    def slots(self, max_in_flight: int) -> int:
        """How many batches it may hold: the running batch's limit, for a continuous one."""
        return self.sizer.size if self.max_sequences else max_in_flight

    def sequences_expected(self) -> int:
        """A continuous replica's running batch as admission counts it: its cap while its
        limit still doubles (no step over the target yet), else its limit."""
        sizer = self.sizer
        if isinstance(sizer, AimdBatchSizer) and sizer.growing:
            return sizer.max_size
        return sizer.size


class ModelServing:
    """Queue and replicas of one model version.

    Dispatch is driven by events, not by waiting tasks: queries arriving, a batch
    finishing, a replica attaching or a policy change each schedule one `_pump`, which
    hands batches to replicas with a free slot (least loaded first) until the queue is
    empty or every replica is full. Queries that arrive in one event-loop iteration are
    therefore batched together, and a reply is turned into answers in the callback that
    receives it.

    Invariant: every query put in the queue has its computation future resolved exactly
    once: by the worker's output, a ReplicaError, or DeadlineExceeded when it expired in
    the queue. A replica holds at most `max_in_flight` batches at once.

    Cold starts: `wake` (None unless the version may scale to zero) is called when queries
    are queued and no replica is attached, on the dispatcher's no-replica path only;
    `waking` then stays True until a replica attaches. The queries wait in the queue.

    Admission control: callers ask `admission.admits(len(queue) + n - 1, deadline)` before
    queueing n inputs of a priority at or below `queue.lowest` (the common case: one
    priority queued), `admit_ranked` for one above it, and `refuse` those turned away.
    `admission` is refreshed from the replicas after each batch and each change of replicas
    or policy, never per query.
    """

    def __init__(
        self,
        model_id: ModelId,
        input_type: InputType,
        policy: BatchPolicy,
        metrics: ModelMetrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.model_id = model_id
        self.models = (str(model_id),)
        """The `models` of every answer of this version (one tuple, shared)."""
        self.input_type = input_type
        self.policy = policy
        self.queue = BatchQueue()
        self.replicas: dict[int, ReplicaHandle] = {}
        self.dropped_expired = 0
        self.latency_estimate_s = 0.0
        self.latency_deviation_s = 0.0  # mean deviation from the estimate (as TCP's RTTVAR)
        self.metrics = self._metrics = metrics
        self.load = LoadCounters()
        """Cumulative per-batch load, read by the autoscaler."""
        self._clock = clock
        self._pump_scheduled = False
        self._fill_until: float | None = None  # delayed batching: dispatch by then at most
        self._fill_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.wake: Callable[[ModelId], None] | None = None
        """Asks for a replica of this version, which may scale to zero (see above)."""
        self.waking = False
        """A query found no replica and `wake` was called; False again once one attaches."""
        self.admission = Admission(clock)
        self.on_batch: BatchHook | None = None
        """Set by clipper.tracing while tracing is on: told of each batch before its
        outcome's own callback is added, so it sees the reply before the queries settle."""
        self.streams: dict[int, StreamDispatched] = {}
        """Streamed queries queued or in flight, by query id (clipper.dataplane.streams):
        each is told where its batch went, so that its pieces reach it."""
        self._refresh_admission()
        if metrics is not None:
            metrics.max_queued.set(-1 if policy.max_queued == 0 else policy.max_queued)

    def submit(self, queries: list[PendingQuery]) -> None:
        """Enqueue the inputs of one request as a group."""
        self.queue.put_group(queries)
        self._schedule_pump()

    def submit_one(self, query: PendingQuery) -> None:
        """Enqueue the one input of a request."""
        self.queue.put(query)
        self._schedule_pump()

    def set_policy(self, policy: BatchPolicy) -> None:
        """Adopt a new batch policy: new sizers where the sizing changed."""
        old, self.policy = self.policy, policy
        if _sizing(old) != _sizing(policy):
            for handle in self.replicas.values():
                handle.sizer = _sizer(policy, handle.max_sequences)
        self._refresh_admission()
        self._schedule_pump()

    @property
    def yields_pieces(self) -> bool:
        """Whether the version streams: a connected replica said so when it registered."""
        for handle in self.replicas.values():
            registration = handle.channel.registration
            if registration is not None and registration.streams:
                return True
        return False

    def attach(self, replica_id: int, channel: WorkerChannel) -> None:
        """Start dispatching to a newly registered replica."""
        registration = channel.registration
        max_sequences = registration.max_sequences if registration is not None else 0
        sizer = _sizer(self.policy, max_sequences)
        handle = ReplicaHandle(replica_id, channel, sizer, max_sequences)
        self.replicas[replica_id] = handle
        if max_sequences:
            channel.on_step = partial(self.observe_step, handle)
        self.waking = False
        self._report_replicas()
        self._schedule_pump()

    def detach(self, channel: WorkerChannel) -> None:
        """Stop dispatching to a replica whose connection closed (its batches in flight
        come back as ReplicaCrashed and are retried or failed)."""
        for replica_id, handle in list(self.replicas.items()):
            if handle.channel is channel:
                del self.replicas[replica_id]
                _resolve_drained(handle)
        self._report_replicas()

    def _report_replicas(self) -> None:
        self._refresh_admission()
        if self._metrics is not None:
            self._metrics.replicas_ready.set(len(self.replicas))

    async def close(self) -> None:
        """Stop dispatching and fail what is queued (the version was removed); batches
        already in flight are still answered by their replicas."""
        self._closed = True
        self._cancel_fill_timer()
        for handle in self.replicas.values():
            _resolve_drained(handle)
        self.replicas.clear()
        for query in self.queue.drain():
            _fail(query, ReplicaCrashed(f"model version {self.model_id} was removed"))
        self._report_replicas()

    @property
    def ready_replicas(self) -> int:
        """Connected replicas."""
        return len(self.replicas)

    async def drain(self, replica_id: int, timeout_s: float) -> None:
        """Stop giving a replica new batches and wait (bounded) for its in-flight ones."""
        handle = self.replicas.get(replica_id)
        if handle is None:
            return
        handle.draining = True
        self._refresh_admission()
        self._schedule_pump()  # what this replica would have taken goes to the others
        if handle.in_flight:
            handle.drained = asyncio.get_running_loop().create_future()
            await asyncio.wait([handle.drained], timeout=timeout_s)
        self.replicas.pop(replica_id, None)
        self._report_replicas()

    # -- admission --------------------------------------------------------------------

    def admit_ranked(self, priority: int, count: int, deadline: float) -> int | None:
        """Admit `count` inputs of `priority`, above the lowest priority queued: judged on
        the queued inputs of `priority` or higher only (the others wait behind them), and
        where the queue is at its bound, queries of lower priorities are displaced (refused
        at once, see `_displace`) to make room. None when admitted, else the `queued` count
        to `refuse` them with."""
        queue, admission = self.queue, self.admission
        same_or_higher = queue.ahead_of(priority)
        if not admission.admits(same_or_higher + count - 1, deadline):
            return same_or_higher + count - 1
        excess = len(queue) + count - admission.max_queued
        if excess > len(queue) - same_or_higher:  # too few of lower priorities to displace
            return len(queue) + count - 1
        for _ in range(excess):
            victim = queue.displace(priority)
            if victim is not None:
                self._displace(victim)
        return None

    def _displace(self, query: PendingQuery) -> None:
        """Answer a query put out of the queue by a higher-priority one: refused, at once."""
        if self._metrics is not None:
            self._metrics.refused_by_priority(query.priority, "displaced").inc()
        error = Overloaded(
            f"{OVERLOADED}: the queue of {self.model_id} is full "
            f"({self.admission.max_queued} queued) and a query of a higher priority took "
            "this one's place; query refused",
            max(1.0, self.admission.retry_after_s(len(self.queue))),
        )
        _fail(query, error)

    def refuse(self, app: str, queued: int, priority: int = 0) -> Overloaded:
        """The error of a query refused at once (`queued` inputs ahead of it), counted."""
        full = self.admission.full(queued)
        reason = "queue_full" if full else "deadline"
        if self._metrics is not None:
            self._metrics.admission_refused(app, reason).inc()
            self._metrics.refused_by_priority(priority, reason).inc()
        why = (
            f"the queue of {self.model_id} is full ({self.admission.max_queued} queued)"
            if full
            else f"{self.model_id} could not answer within the latency SLO "
            f"({_duration(self.policy.slo_s)})"
        )
        return Overloaded(
            f"{OVERLOADED}: {why}; query refused at once",
            max(1.0, self.admission.retry_after_s(queued)),
        )

    def _refresh_admission(self) -> None:
        """Bring the admission estimate up to date with the replicas (per batch, not per
        query). A version without an accepting replica admits (its queries wait for one, as
        before admission control), and so does one with no batch latency measured yet."""
        policy = self.policy
        sizes = free = sequences = 0
        for handle in self.replicas.values():
            if handle.accepting:
                slots = handle.slots(policy.max_in_flight)
                sizes += handle.sizer.size
                free += slots - handle.in_flight
                sequences += handle.sequences_expected() if handle.continuous else 0
        admission = self.admission
        admission.free_slots = free
        # A batch's latency as admission counts it: the mean plus twice its deviation (a
        # late estimate refuses a few queries that would have made it; an early one admits
        # queries that then wait until their deadline).
        latency_s = self.latency_estimate_s + 2 * self.latency_deviation_s
        if sequences:  # continuous: a queued query starts when a running sequence leaves,
            admission.per_round = 1  # one every (a sequence's latency / the sequences)
            admission.batch_latency_s = latency_s / sequences
        else:
            admission.per_round = max(1, sizes * policy.max_in_flight)
            admission.batch_latency_s = latency_s if sizes else 0.0
        bound = policy.max_queued or derived_max_queued(
            admission.per_round, admission.batch_latency_s, policy.longest_slo_s
        )
        if bound != admission.max_queued:
            admission.max_queued = bound
            if self._metrics is not None:
                self._metrics.max_queued.set(-1 if bound == UNBOUNDED else bound)

    # -- dispatch -------------------------------------------------------------------------

    def _schedule_pump(self) -> None:
        """Run `_pump` once, after the callbacks of this loop iteration."""
        if not self._pump_scheduled and not self._closed:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """Hand queued queries to replicas with a free slot until one side runs out."""
        self._pump_scheduled = False
        max_in_flight = self.policy.max_in_flight
        while len(self.queue) and not self._closed:
            handle = self._least_loaded(max_in_flight)
            if handle is None:
                if not self.replicas:
                    self._wake()
                return
            if handle.continuous:
                self._join(handle)
                continue
            size = handle.sizer.size
            if self._should_wait_for_fill(size):
                return
            batch, expired = self.queue.take(size, self._clock())
            if expired:
                self._expire(expired)
            if batch:
                self._send(handle, batch)

    def _wake(self) -> None:
        """Queries wait and no replica is attached: ask for one if the version may scale to
        zero (a cold start)."""
        if self.wake is not None:
            self.waking = True
            self.wake(self.model_id)

    def _join(self, handle: ReplicaHandle) -> None:
        """Continuous batching: each queued query that fits under the replica's limit goes
        out as a batch of its own, and joins the running batch at the worker's next step
        (never waiting for a batch to fill)."""
        self._cancel_fill_timer()
        free = handle.sizer.size - handle.in_flight
        batch, expired = self.queue.take(free, self._clock())
        if expired:
            self._expire(expired)
        for query in batch:
            self._send(handle, [query])

    def observe_step(self, handle: ReplicaHandle, size: int, latency_s: float) -> None:
        """A continuous-batching replica ran a step of `size` sequences in `latency_s`: the
        running batch's limit learns from it (AIMD against the SLO's per-step share)."""
        before = handle.sizer.size
        handle.sizer.observe(size, latency_s)
        self.load.busy_s += latency_s
        if self._metrics is not None:
            self._metrics.batch_size.observe(size)
            self._metrics.batch_latency.observe(latency_s)
        if handle.sizer.size != before:
            self._refresh_admission()
            if handle.sizer.size > before and len(self.queue):
                self._schedule_pump()

    def _least_loaded(self, max_in_flight: int) -> ReplicaHandle | None:
        best: ReplicaHandle | None = None
        for handle in self.replicas.values():
            free = handle.in_flight < handle.slots(max_in_flight) and handle.accepting
            if free and (best is None or handle.in_flight < best.in_flight):
                best = handle
        return best

    def _should_wait_for_fill(self, size: int) -> bool:
        """Delayed batching: under light load, let a batch fill for up to the wait timeout,
        never past the point where the earliest query could no longer make its deadline.
        True while the batch should wait (a timer then pumps again)."""
        wait_s = self.policy.wait_timeout_s
        if wait_s <= 0 or len(self.queue) >= size:
            self._cancel_fill_timer()
            return False
        now = self._clock()
        if self._fill_until is None:
            earliest = self.queue.earliest_deadline()
            if earliest is not None:
                # Leave the batch its expected latency (half the budget before any is known).
                budget = earliest - now
                wait_s = min(wait_s, budget - (self.latency_estimate_s or budget / 2))
            self._fill_until = now + wait_s
        if now >= self._fill_until:
            self._cancel_fill_timer()
            return False
        if self._fill_timer is None:
            loop = asyncio.get_running_loop()
            self._fill_timer = loop.call_later(self._fill_until - now, self._on_fill_timer)
        return True

    def _on_fill_timer(self) -> None:
        self._fill_timer = None
        self._fill_until = -float("inf")  # the window is over: dispatch what is there
        self._pump()

    def _cancel_fill_timer(self) -> None:
        self._fill_until = None
        if self._fill_timer is not None:
            self._fill_timer.cancel()
            self._fill_timer = None

    def _send(self, handle: ReplicaHandle, batch: list[PendingQuery]) -> None:
        channel = handle.channel
        started = self._clock()
        budget_us = max(0, int((min(q.deadline for q in batch) - started) * 1e6))
        batch_id = channel.next_batch_id()
        frame = encode_batch(
            batch_id, self.input_type.value, budget_us, [query.buffer for query in batch]
        )
        self._observe_dispatch(batch, handle.continuous)
        handle.in_flight += 1
        self.admission.free_slots -= 1
        outcome = channel.send_batch(batch_id, frame)
        if self.streams:  # a streamed query waits: one check per batch, none per query
            self._tell_streams(channel, batch_id, batch)
        if self.on_batch is not None:  # tracing on: one check per batch, none per query
            self.on_batch(self.model_id, handle.replica_id, batch, outcome)
        outcome.add_done_callback(partial(self._on_outcome, handle, batch, started))

    def _tell_streams(
        self, channel: WorkerChannel, batch_id: int, batch: list[PendingQuery]
    ) -> None:
        for index, query in enumerate(batch):
            dispatched = self.streams.get(query.query_id)
            if dispatched is not None:
                dispatched(channel, batch_id, index)

    def _on_outcome(
        self,
        handle: ReplicaHandle,
        batch: list[PendingQuery],
        started: float,
        outcome: asyncio.Future[BatchOutcome],
    ) -> None:
        """A batch came back (or its replica went away): resolve its queries, pump.

        When the replica answered, the next batch goes out before this one's queries are
        resolved: the model computes it while their answers are written."""
        handle.in_flight -= 1
        try:
            if not outcome.cancelled() and outcome.exception() is None:
                self._pump()
            self._resolve(handle, batch, started, outcome)
        finally:
            if handle.in_flight == 0:
                _resolve_drained(handle)
            self._refresh_admission()
            self._schedule_pump()

    def _resolve(
        self,
        handle: ReplicaHandle,
        batch: list[PendingQuery],
        started: float,
        future: asyncio.Future[BatchOutcome],
    ) -> None:
        if future.cancelled():
            error: BaseException | None = ReplicaCrashed(
                f"batch to {handle.channel.name} cancelled"
            )
        else:
            error = future.exception()
        if isinstance(error, ReplicaCrashed):
            self._count_error(handle)
            self._retry_or_fail(batch, error)
            return
        if error is not None:
            self._count_error(handle)
            for query in batch:
                _fail(query, error if isinstance(error, ReplicaError) else _replica_error(error))
            return
        outcome = future.result()
        latency_s = self._clock() - started
        if not handle.continuous:  # a continuous replica's load and sizing are its steps'
            self.load.busy_s += latency_s
            handle.sizer.observe(len(batch), latency_s)
        if not self.latency_estimate_s:  # the first measurement is the estimate
            self.latency_estimate_s = latency_s
        deviation_s = abs(latency_s - self.latency_estimate_s)
        self.latency_deviation_s = 0.75 * self.latency_deviation_s + 0.25 * deviation_s
        self.latency_estimate_s = 0.8 * self.latency_estimate_s + 0.2 * latency_s
        if self._metrics is not None:
            if not handle.continuous:
                self._metrics.batch_latency.observe(latency_s)
            self._metrics.replica_batches(handle.replica_id).inc()
        if isinstance(outcome, BatchError):
            self._count_error(handle)
            error = _model_error(outcome)
            ids = ", ".join(str(query.query_id) for query in batch)
            log.error("model %s failed on queries %s: %s", self.model_id, ids, error)
            for query in batch:
                _fail(query, error)
            return
        if len(outcome.outputs) + len(outcome.expired) != len(batch):  # a broken worker
            self._count_error(handle)
            error = ReplicaError(f"{len(outcome.outputs)} outputs for {len(batch)} inputs")
            for query in batch:
                _fail(query, error)
            return
        if not outcome.expired:  # the common reply: one output per query, in order
            for query, output in zip(batch, outcome.outputs, strict=True):
                if not query.future.done():
                    query.future.set_result(output)
                    if query.on_settled is not None:
                        _notify(query.on_settled, query.query_id)
            return
        expired = set(outcome.expired)
        outputs = iter(outcome.outputs)
        for index, query in enumerate(batch):
            if index in expired:
                _fail(query, DeadlineExceeded("the worker skipped it: deadline passed"))
            else:
                _succeed(query, next(outputs))

    def _expire(self, expired: list[PendingQuery]) -> None:
        self.dropped_expired += len(expired)
        self.load.expired += len(expired)
        if self._metrics is not None:
            self._metrics.dropped_expired.inc(len(expired))
        for query in expired:
            _fail(query, DeadlineExceeded(f"deadline passed while queued for {self.model_id}"))

    def _retry_or_fail(self, batch: list[PendingQuery], error: ReplicaCrashed) -> None:
        """A replica died holding the batch: retry each query once on another replica if
        its deadline still allows, else fail it with the crash."""
        now = self._clock()
        retry = []
        for query in batch:
            query.attempts += 1
            if query.attempts < 2 and query.deadline > now + self.latency_estimate_s:
                retry.append(query)
            else:
                _fail(query, error)
        if retry:
            log.warning("retrying %d queries of %s after: %s", len(retry), self.model_id, error)
            self.queue.put_group(retry)  # the caller pumps

    def _observe_dispatch(self, batch: list[PendingQuery], continuous: bool) -> None:
        wall_now = time.monotonic()
        delays = [wall_now - query.enqueued_at for query in batch]
        self.load.dispatched(len(delays), sum(delays))
        metrics = self._metrics
        if metrics is None:
            return
        if not continuous:  # a continuous replica's batch sizes are its steps'
            metrics.batch_size.observe(len(batch))
        metrics.queue_delay.observe_each(delays)

    def _count_error(self, handle: ReplicaHandle) -> None:
        if self._metrics is not None:
            self._metrics.replica_errors(handle.replica_id).inc()


def _sizing(policy: BatchPolicy) -> tuple[int, float]:
    """The sizer's batch size and latency target. A query may wait for the batches already
    in flight on its replica (up to `max_in_flight`) before its own runs, so each batch gets
    an equal share of the SLO: adaptive sizing then keeps queue wait plus compute within it.
    """
    return policy.batch_size, policy.slo_s / (1 + policy.max_in_flight)


def _sizer(policy: BatchPolicy, max_sequences: int) -> BatchSizer:
    """A replica's batch sizer; for a continuous one (`max_sequences` > 0) the limit of its
    running batch: a fixed `batch_size` (at most `max_sequences`), else AIMD over its steps'
    latencies against the SLO's per-step share (STEPS_PER_FIRST_PIECE), doubling from 1
    until a step is over it (slow start: a burst of streams is joined within a few steps)."""
    if not max_sequences:
        return make_sizer(*_sizing(policy))
    if policy.batch_size > 0:
        return FixedBatchSizer(min(policy.batch_size, max_sequences))
    return AimdBatchSizer(
        policy.slo_s / STEPS_PER_FIRST_PIECE, max_size=max_sequences, slow_start=True
    )


def _duration(seconds: float) -> str:
    us = round(seconds * 1e6)
    return f"{us} µs" if us < 1000 else f"{us / 1000:g} ms"


def _replica_error(error: BaseException) -> ReplicaError:
    return ReplicaError(f"{type(error).__name__}: {error}")


def _resolve_drained(handle: ReplicaHandle) -> None:
    if handle.drained is not None and not handle.drained.done():
        handle.drained.set_result(None)


def _succeed(query: PendingQuery, output: Any) -> None:
    if not query.future.done():
        query.future.set_result(output)
        if query.on_settled is not None:
            _notify(query.on_settled, query.query_id)


def _fail(query: PendingQuery, error: Exception) -> None:
    if not query.future.done():
        query.future.set_exception(error)
        if query.on_settled is not None:
            _notify(query.on_settled, query.query_id)


def _notify(on_settled: Callable[[], None], query_id: int) -> None:
    """Tell a settled query's waiter. Its failure must not keep the batch's other queries
    from being settled, so it is logged here (a done callback's would be the loop's)."""
    try:
        on_settled()
    except Exception:
        log.exception("answering query %d failed", query_id)


def _model_error(outcome: BatchError) -> ModelError:
    if outcome.error_type in WORKER_ERROR_TYPES:
        return ModelError(f"{outcome.error_type}: {outcome.message}")
    return ModelRaised(outcome.error_type, outcome.message)
