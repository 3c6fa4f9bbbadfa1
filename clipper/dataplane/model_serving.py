"""Serving one model version: its batch queue and the dispatchers of its replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clipper.batching.queue import BatchQueue, PendingQuery
from clipper.batching.sizing import BatchSizer, make_sizer
from clipper.exceptions import DeadlineExceeded, ModelError, ReplicaCrashed, ReplicaError
from clipper.metrics import ModelMetrics
from clipper.rpc.protocol import BatchError, encode_batch
from clipper.rpc.server import WorkerChannel
from clipper.types import InputType, ModelId

__all__ = ["BatchPolicy", "ModelServing", "ReplicaHandle"]

log = logging.getLogger("clipper.dataplane")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a model version's queries are batched; changeable at run time."""

    batch_size: int = -1
    wait_timeout_s: float = 0.0
    max_in_flight: int = 1
    slo_s: float = 0.1


class ReplicaHandle:
    """A connected replica: its channel, batch sizer and dispatcher tasks."""

    __slots__ = ("channel", "draining", "replica_id", "sizer", "tasks")

    def __init__(self, replica_id: int, channel: WorkerChannel, sizer: BatchSizer) -> None:
        self.replica_id = replica_id
        self.channel = channel
        self.sizer = sizer
        self.tasks: list[asyncio.Task[None]] = []
        self.draining = False

    @property
    def accepting(self) -> bool:
        """True while the replica takes new batches."""
        return not self.channel.closed and not self.draining


class ModelServing:
    """Queue and replicas of one model version.

    Invariant: every query put in the queue has its computation future resolved exactly
    once: by the worker's output, a ReplicaError, or DeadlineExceeded when it expired in
    the queue. A replica runs up to `max_in_flight` batches at once, one per dispatcher;
    a dispatcher takes a batch only when it is free, so free replicas take work first.
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
        self.metrics = self._metrics = metrics
        self._clock = clock

    def submit(self, queries: list[PendingQuery]) -> None:
        """Enqueue the inputs of one request as a group."""
        self.queue.put_group(queries)

    def set_policy(self, policy: BatchPolicy) -> None:
        """Adopt a new batch policy: new sizers, and dispatchers added where needed."""
        old, self.policy = self.policy, policy
        for handle in self.replicas.values():
            if (old.batch_size, old.slo_s) != (policy.batch_size, policy.slo_s):
                handle.sizer = make_sizer(policy.batch_size, policy.slo_s)
            self._start_dispatchers(handle)

    def attach(self, replica_id: int, channel: WorkerChannel) -> None:
        """Start dispatching to a newly registered replica."""
        sizer = make_sizer(self.policy.batch_size, self.policy.slo_s)
        handle = self.replicas[replica_id] = ReplicaHandle(replica_id, channel, sizer)
        self._start_dispatchers(handle)
        self._report_replicas()

    def _start_dispatchers(self, handle: ReplicaHandle) -> None:
        loop = asyncio.get_running_loop()
        while len(handle.tasks) < self.policy.max_in_flight:
            slot = len(handle.tasks)
            name = f"dispatch {handle.channel.name}#{slot}"
            handle.tasks.append(loop.create_task(self._dispatch(handle, slot), name=name))

    def detach(self, channel: WorkerChannel) -> None:
        """Stop dispatching to a replica whose connection closed."""
        for replica_id, handle in list(self.replicas.items()):
            if handle.channel is channel:
                del self.replicas[replica_id]
        self.queue.wake_all()
        self._report_replicas()

    def _report_replicas(self) -> None:
        if self._metrics is not None:
            self._metrics.replicas_ready.set(len(self.replicas))

    async def close(self) -> None:
        """Stop every dispatcher and fail what is queued (the version was removed)."""
        tasks = [task for handle in self.replicas.values() for task in handle.tasks]
        self.replicas.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
        self.queue.wake_all()
        await asyncio.wait(handle.tasks, timeout=timeout_s)
        self.replicas.pop(replica_id, None)
        self._report_replicas()

    async def _dispatch(self, handle: ReplicaHandle, slot: int) -> None:
        while handle.accepting and slot < self.policy.max_in_flight:
            await self.queue.wait()
            if not handle.accepting:
                break
            size = handle.sizer.size
            await self._maybe_wait_for_fill(size)
            batch, expired = self.queue.take(size, self._clock())
            if expired:
                self._expire(expired)
            if batch:
                await self._run_batch(handle, batch)
        if slot < len(handle.tasks):
            self.queue.wake_all()

    async def _maybe_wait_for_fill(self, size: int) -> None:
        """Delayed batching: under light load, let a batch fill for up to the wait timeout,
        never past the point where the earliest query could no longer make its deadline."""
        wait_s = self.policy.wait_timeout_s
        if wait_s <= 0 or len(self.queue) >= size:
            return
        earliest = self.queue.earliest_deadline()
        if earliest is not None:
            wait_s = min(wait_s, earliest - self._clock() - self.latency_estimate_s)
        if wait_s > 0:
            await self.queue.wait_for_more(size, wait_s)

    def _expire(self, expired: list[PendingQuery]) -> None:
        self.dropped_expired += len(expired)
        if self._metrics is not None:
            self._metrics.dropped_expired.inc(len(expired))
        for query in expired:
            _fail(query, DeadlineExceeded(f"deadline passed while queued for {self.model_id}"))

    async def _run_batch(self, handle: ReplicaHandle, batch: list[PendingQuery]) -> None:
        channel = handle.channel
        started = self._clock()
        budget_us = max(0, int((min(q.deadline for q in batch) - started) * 1e6))
        batch_id = channel.next_batch_id()
        frame = encode_batch(
            batch_id, self.input_type.value, budget_us, [query.buffer for query in batch]
        )
        self._observe_dispatch(batch, started)
        try:
            outcome = await channel.send_batch(batch_id, frame)
        except ReplicaCrashed as exc:
            self._count_error(handle)
            self._retry_or_fail(batch, exc)
            return
        except ReplicaError as exc:
            self._count_error(handle)
            for query in batch:
                _fail(query, exc)
            return
        latency_s = self._clock() - started
        handle.sizer.observe(len(batch), latency_s)
        self.latency_estimate_s = 0.8 * self.latency_estimate_s + 0.2 * latency_s
        if self._metrics is not None:
            self._metrics.batch_latency.observe(latency_s)
            self._metrics.replica_batches(handle.replica_id).inc()
        if isinstance(outcome, BatchError):
            self._count_error(handle)
            error = ModelError(f"{outcome.error_type}: {outcome.message}")
            ids = ", ".join(str(query.query_id) for query in batch)
            log.error("model %s failed on queries %s: %s", self.model_id, ids, error)
            for query in batch:
                _fail(query, error)
            return
        expired = set(outcome.expired)
        outputs = iter(outcome.outputs)
        for index, query in enumerate(batch):
            if index in expired:
                _fail(query, DeadlineExceeded("the worker skipped it: deadline passed"))
            else:
                _succeed(query, next(outputs))

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
            self.queue.put_group(retry)

    def _observe_dispatch(self, batch: list[PendingQuery], now: float) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        metrics.batch_size.observe(len(batch))
        wall_now = time.monotonic()
        for query in batch:
            metrics.queue_delay.observe(wall_now - query.enqueued_at)

    def _count_error(self, handle: ReplicaHandle) -> None:
        if self._metrics is not None:
            self._metrics.replica_errors(handle.replica_id).inc()


def _succeed(query: PendingQuery, output: Any) -> None:
    if not query.future.done():
        query.future.set_result(output)


def _fail(query: PendingQuery, error: Exception) -> None:
    if not query.future.done():
        query.future.set_exception(error)
