"""The per-model-version batch queue, ordered by earliest deadline."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

__all__ = ["BatchQueue", "PendingQuery"]


class PendingQuery:
    """One input waiting for a model: its encoded buffer, deadline and future output."""

    __slots__ = ("buffer", "deadline", "future", "query_id")

    def __init__(
        self, query_id: int, buffer: bytes, deadline: float, future: asyncio.Future[Any]
    ) -> None:
        self.query_id = query_id
        self.buffer = buffer
        self.deadline = deadline
        self.future = future


class BatchQueue:
    """Earliest-deadline-first queue; consumers wait on an event, never poll.

    Invariant: `_nonempty` is set whenever the heap holds an item (it may also be set
    spuriously by `wake_all`, so consumers re-check after waking).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PendingQuery]] = []
        self._order = itertools.count()
        self._nonempty = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, query: PendingQuery) -> None:
        """Enqueue one query."""
        heapq.heappush(self._heap, (query.deadline, next(self._order), query))
        self._nonempty.set()

    async def wait(self) -> None:
        """Return once the queue may hold an item (or `wake_all` was called)."""
        if not self._heap:
            self._nonempty.clear()
            await self._nonempty.wait()

    def take(self, max_items: int, now: float) -> tuple[list[PendingQuery], int]:
        """Pop up to `max_items` live queries, earliest deadline first.

        Queries already answered (by their deadline timer) or past their deadline are
        dropped, never dispatched; returns (batch, number dropped).
        """
        batch: list[PendingQuery] = []
        dropped = 0
        heap = self._heap
        while heap and len(batch) < max_items:
            query = heapq.heappop(heap)[2]
            if query.future.done() or query.deadline <= now:
                dropped += 1
                continue
            batch.append(query)
        return batch, dropped

    def wake_all(self) -> None:
        """Wake every waiting consumer, e.g. when a replica goes away."""
        self._nonempty.set()

    def drain(self) -> list[PendingQuery]:
        """Remove and return everything queued."""
        items = [entry[2] for entry in self._heap]
        self._heap.clear()
        return items
