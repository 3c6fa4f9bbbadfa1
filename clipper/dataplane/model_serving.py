"""Serving one model version: its batch queue and one dispatcher per connected replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clipper.batching.queue import BatchQueue, PendingQuery
from clipper.batching.sizing import BatchSizer, make_sizer
from clipper.exceptions import ModelError, ReplicaCrashed, ReplicaError
from clipper.rpc.protocol import BatchError, encode_batch
from clipper.rpc.server import WorkerChannel
from clipper.types import InputType, ModelId

__all__ = ["ModelServing", "ReplicaHandle"]

log = logging.getLogger("clipper.dataplane")
Clock = Callable[[], float]


class ReplicaHandle:
    """A connected replica: its channel, batch sizer and dispatcher task."""

    __slots__ = ("batches", "channel", "errors", "replica_id", "sizer", "task")

    def __init__(self, replica_id: int, channel: WorkerChannel, sizer: BatchSizer) -> None:
        self.replica_id = replica_id
        self.channel = channel
        self.sizer = sizer
        self.task: asyncio.Task[None] | None = None
        self.batches = 0
        self.errors = 0


class ModelServing:
    """Queue and replicas of one model version.

    Invariant: each query taken from the queue is answered exactly once, by the worker's
    output, a ReplicaError, or (earlier) its deadline timer; whichever comes first wins.
    """

    def __init__(
        self,
        model_id: ModelId,
        input_type: InputType,
        batch_size: int,
        slo_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.model_id = model_id
        self.input_type = input_type
        self.batch_size = batch_size
        self.slo_s = slo_s
        self.queue = BatchQueue()
        self.replicas: dict[int, ReplicaHandle] = {}
        self.dropped_expired = 0
        self._clock = clock

    def submit(self, query: PendingQuery) -> None:
        """Enqueue a query for this model version."""
        self.queue.put(query)

    def attach(self, replica_id: int, channel: WorkerChannel) -> None:
        """Start dispatching to a newly registered replica."""
        handle = ReplicaHandle(replica_id, channel, make_sizer(self.batch_size, self.slo_s))
        self.replicas[replica_id] = handle
        handle.task = asyncio.get_running_loop().create_task(
            self._dispatch(handle), name=f"dispatch {channel.name}"
        )

    def detach(self, channel: WorkerChannel) -> None:
        """Stop dispatching to a replica whose connection closed."""
        for replica_id, handle in list(self.replicas.items()):
            if handle.channel is channel:
                del self.replicas[replica_id]
        self.queue.wake_all()

    async def close(self) -> None:
        """Stop every dispatcher (the version was removed)."""
        tasks = [handle.task for handle in self.replicas.values() if handle.task]
        self.replicas.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for query in self.queue.drain():
            _fail(query, ReplicaCrashed(f"model version {self.model_id} was removed"))

    @property
    def ready_replicas(self) -> int:
        """Connected replicas."""
        return len(self.replicas)

    async def _dispatch(self, handle: ReplicaHandle) -> None:
        channel = handle.channel
        while not channel.closed:
            await self.queue.wait()
            if channel.closed:
                break
            batch, dropped = self.queue.take(handle.sizer.size, self._clock())
            self.dropped_expired += dropped
            if batch:
                await self._run_batch(handle, batch)
        self.queue.wake_all()

    async def _run_batch(self, handle: ReplicaHandle, batch: list[PendingQuery]) -> None:
        channel = handle.channel
        started = self._clock()
        budget_us = max(0, int((batch[0].deadline - started) * 1e6))
        batch_id = channel.next_batch_id()
        frame = encode_batch(
            batch_id, self.input_type.value, budget_us, [query.buffer for query in batch]
        )
        try:
            outcome = await channel.send_batch(batch_id, frame)
        except ReplicaError as exc:
            handle.errors += 1
            for query in batch:
                _fail(query, exc)
            return
        handle.batches += 1
        handle.sizer.observe(len(batch), self._clock() - started)
        if isinstance(outcome, BatchError):
            handle.errors += 1
            error = ModelError(f"{outcome.error_type}: {outcome.message}")
            ids = ", ".join(str(query.query_id) for query in batch)
            log.error("model %s failed on queries %s: %s", self.model_id, ids, error)
            for query in batch:
                _fail(query, error)
            return
        expired = set(outcome.expired)
        outputs = iter(outcome.outputs)
        for index, query in enumerate(batch):
            if index not in expired:
                _succeed(query, next(outputs))


def _succeed(query: PendingQuery, output: Any) -> None:
    if not query.future.done():
        query.future.set_result(output)


def _fail(query: PendingQuery, error: Exception) -> None:
    if not query.future.done():
        query.future.set_exception(error)
