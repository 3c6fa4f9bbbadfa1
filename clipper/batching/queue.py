"""The per-model-version batch queue, ordered by earliest deadline."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from clipper.core.types import InputBuffer

__all__ = ["BatchQueue", "PendingQuery"]


class PendingQuery:
    """One input waiting for a model: its encoded buffer, deadline and future output.

    `future` is the computation: only a dispatcher resolves it (with the output or a
    ReplicaError), never a client's deadline timer, so late answers are still seen. A
    dispatcher that settles it calls `on_settled` right after, when set: the one waiter of
    a computation nobody shares, told without a done callback and a loop iteration.
    """

    __slots__ = (
        "attempts", "buffer", "deadline", "enqueued_at", "future", "on_settled", "query_id",
    )  # fmt: skip

    def __init__(
        self, query_id: int, buffer: InputBuffer, deadline: float, future: asyncio.Future[Any]
    ) -> None:
        self.query_id = query_id
        self.buffer = buffer
        self.deadline = deadline
        self.future = future
        self.enqueued_at = 0.0
        self.attempts = 0
        self.on_settled: Callable[[], None] | None = None


class BatchQueue:
    """Earliest-deadline-first queue of groups (the dispatcher is told when to look, see
    ModelServing; the queue itself never blocks).

    A group (a client's `input_batch`, or a single input) shares one deadline and is taken
    whole when it fits in the room left in a batch; it is split only when it is larger
    than a whole batch.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, list[PendingQuery]]] = []
        self._order = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        """Queued inputs (not groups)."""
        return self._size

    def put(self, query: PendingQuery) -> None:
        """Enqueue one query (a group of one)."""
        query.enqueued_at = time.monotonic()
        heapq.heappush(self._heap, (query.deadline, next(self._order), [query]))
        self._size += 1

    def put_group(self, queries: Sequence[PendingQuery]) -> None:
        """Enqueue queries that should travel in one batch where they fit."""
        if not queries:
            return
        now = time.monotonic()
        for query in queries:
            query.enqueued_at = now
        deadline = queries[0].deadline if len(queries) == 1 else min(q.deadline for q in queries)
        heapq.heappush(self._heap, (deadline, next(self._order), list(queries)))
        self._size += len(queries)

    def take(self, max_items: int, now: float) -> tuple[list[PendingQuery], list[PendingQuery]]:
        """Pop up to `max_items` live queries, earliest deadline first.

        Returns (batch, expired): queries whose deadline passed (or whose computation is
        already resolved) are removed and returned separately, never dispatched.
        """
        batch: list[PendingQuery] = []
        expired: list[PendingQuery] = []
        heap = self._heap
        while heap and len(batch) < max_items:
            deadline, order, group = heapq.heappop(heap)
            self._size -= len(group)
            if len(group) == 1:  # the common case, without the general one's lists
                query = group[0]
                if query.future.done() or deadline <= now:
                    expired.append(query)
                else:
                    batch.append(query)
                continue
            live = [q for q in group if not q.future.done() and q.deadline > now]
            if len(live) != len(group):
                expired.extend(q for q in group if q.future.done() or q.deadline <= now)
            room = max_items - len(batch)
            if len(live) <= room:
                batch.extend(live)
            elif not batch:
                batch.extend(live[:room])
                self._push_back(deadline, order, live[room:])
            else:
                self._push_back(deadline, order, live)
                break
        return batch, expired

    def _push_back(self, deadline: float, order: int, group: list[PendingQuery]) -> None:
        heapq.heappush(self._heap, (deadline, order, group))
        self._size += len(group)

    def earliest_deadline(self) -> float | None:
        """The deadline of the most urgent queued group, if any."""
        return self._heap[0][0] if self._heap else None

    def drain(self) -> list[PendingQuery]:
        """Remove and return everything queued."""
        items = [query for entry in self._heap for query in entry[2]]
        self._heap.clear()
        self._size = 0
        return items
