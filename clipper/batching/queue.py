"""The per-model-version batch queue: higher priority first, earliest deadline within one."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from clipper.core.types import InputBuffer

__all__ = ["BatchQueue", "PendingQuery"]

_NONE_QUEUED = sys.maxsize
"""`BatchQueue.lowest` of an empty queue: every priority is at or below it."""

_Entry = tuple[float, int, list["PendingQuery"]]
"""A queued group: (its earliest deadline, arrival order, its queries)."""


class PendingQuery:
    """One input waiting for a model: its encoded buffer, deadline, priority and future output.

    `future` is the computation: only a dispatcher resolves it (with the output or a
    ReplicaError), never a client's deadline timer, so late answers are still seen. A
    dispatcher that settles it calls `on_settled` right after, when set: the one waiter of
    a computation nobody shares, told without a done callback and a loop iteration.
    """

    __slots__ = (
        "attempts", "buffer", "deadline", "enqueued_at", "future", "on_settled", "priority",
        "query_id",
    )  # fmt: skip

    def __init__(
        self,
        query_id: int,
        buffer: InputBuffer,
        deadline: float,
        future: asyncio.Future[Any],
        priority: int = 0,
    ) -> None:
        self.query_id = query_id
        self.buffer = buffer
        self.deadline = deadline
        self.future = future
        self.priority = priority
        self.enqueued_at = 0.0
        self.attempts = 0
        self.on_settled: Callable[[], None] | None = None


class _Class:
    """The queued groups of one priority: a heap by earliest deadline, and its inputs."""

    __slots__ = ("heap", "priority", "size")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.heap: list[_Entry] = []
        self.size = 0


class BatchQueue:
    """Queue of groups, served by priority (higher first) and earliest deadline within a
    priority (the dispatcher is told when to look, see ModelServing; the queue never blocks).

    A group (a client's `input_batch`, or a single input) shares one deadline and priority
    (its first query's) and is taken whole when it fits in the room left in a batch; it is
    split only when it is larger than a whole batch.

    Invariants: one heap per priority ever queued (at most `len(PRIORITIES)`), kept in
    `_classes` highest first; `lowest` is the lowest priority with queued inputs
    (`_NONE_QUEUED` when empty), so a query at or below it waits behind everything queued,
    exactly as in a queue of one priority (the fast path of admission control).
    """

    def __init__(self) -> None:
        self._classes: list[_Class] = []
        self._by_priority: dict[int, _Class] = {}
        self._order = itertools.count()
        self._size = 0
        self.lowest = _NONE_QUEUED

    def __len__(self) -> int:
        """Queued inputs (not groups)."""
        return self._size

    def put(self, query: PendingQuery) -> None:
        """Enqueue one query (a group of one)."""
        query.enqueued_at = time.monotonic()
        priority = query.priority
        queued = self._by_priority.get(priority) or self._add_class(priority)
        heapq.heappush(queued.heap, (query.deadline, next(self._order), [query]))
        queued.size += 1
        self._size += 1
        if priority < self.lowest:
            self.lowest = priority

    def put_group(self, queries: Sequence[PendingQuery]) -> None:
        """Enqueue queries that should travel in one batch where they fit."""
        if not queries:
            return
        now = time.monotonic()
        for query in queries:
            query.enqueued_at = now
        deadline = queries[0].deadline if len(queries) == 1 else min(q.deadline for q in queries)
        priority = queries[0].priority
        queued = self._by_priority.get(priority) or self._add_class(priority)
        heapq.heappush(queued.heap, (deadline, next(self._order), list(queries)))
        queued.size += len(queries)
        self._size += len(queries)
        if priority < self.lowest:
            self.lowest = priority

    def _add_class(self, priority: int) -> _Class:
        added = self._by_priority[priority] = _Class(priority)
        self._classes.append(added)
        self._classes.sort(key=lambda queued: -queued.priority)
        return added

    def ahead_of(self, priority: int) -> int:
        """Queued inputs of `priority` or higher: those a new query of `priority` waits
        behind (all of them at or below `lowest`)."""
        if priority <= self.lowest:
            return self._size
        return sum(queued.size for queued in self._classes if queued.priority >= priority)

    def take(self, max_items: int, now: float) -> tuple[list[PendingQuery], list[PendingQuery]]:
        """Pop up to `max_items` live queries, highest priority and earliest deadline first.

        Returns (batch, expired): queries whose deadline passed (or whose computation is
        already resolved) are removed and returned separately, never dispatched.
        """
        batch: list[PendingQuery] = []
        expired: list[PendingQuery] = []
        classes = self._classes
        if len(classes) == 1:  # one priority ever queued: the common queue
            self._take_from(classes[0], max_items, now, batch, expired)
            if not self._size:
                self.lowest = _NONE_QUEUED
            return batch, expired
        for queued in classes:
            if queued.size and self._take_from(queued, max_items, now, batch, expired):
                break
            if len(batch) >= max_items:
                break
        if not self._size:
            self.lowest = _NONE_QUEUED
        elif not self._by_priority[self.lowest].size:
            self._find_lowest()
        return batch, expired

    def _take_from(
        self,
        queued: _Class,
        max_items: int,
        now: float,
        batch: list[PendingQuery],
        expired: list[PendingQuery],
    ) -> bool:
        """Fill `batch` from one priority; True when a group that does not fit stopped it
        (the batch goes out without it, and without anything of a lower priority)."""
        heap = queued.heap
        while heap and len(batch) < max_items:
            deadline, order, group = heapq.heappop(heap)
            queued.size -= len(group)
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
                self._push_back(queued, (deadline, order, live[room:]))
            else:
                self._push_back(queued, (deadline, order, live))
                return True
        return False

    def _push_back(self, queued: _Class, entry: _Entry) -> None:
        heapq.heappush(queued.heap, entry)
        queued.size += len(entry[2])
        self._size += len(entry[2])

    def _find_lowest(self) -> None:
        held = [queued.priority for queued in self._classes if queued.size]
        self.lowest = min(held) if held else _NONE_QUEUED

    def displace(self, priority: int) -> PendingQuery | None:
        """Remove and return the queued query of the lowest priority below `priority`, the
        latest deadline within it (for a query of `priority` to take its place); None when
        nothing below `priority` is queued."""
        if self.lowest >= priority:
            return None
        queued = self._by_priority[self.lowest]
        heap = queued.heap
        index = max(range(len(heap)), key=lambda i: (heap[i][0], heap[i][1]))
        group = heap[index][2]
        victim = group.pop()
        if not group:
            heap[index] = heap[-1]
            heap.pop()
            heapq.heapify(heap)
        queued.size -= 1
        self._size -= 1
        if not queued.size:
            self._find_lowest()
        return victim

    def earliest_deadline(self) -> float | None:
        """The deadline of the most urgent queued group, if any."""
        heads = [queued.heap[0][0] for queued in self._classes if queued.heap]
        return min(heads) if heads else None

    def drain(self) -> list[PendingQuery]:
        """Remove and return everything queued."""
        items = [query for queued in self._classes for entry in queued.heap for query in entry[2]]
        for queued in self._classes:
            queued.heap.clear()
            queued.size = 0
        self._size = 0
        self.lowest = _NONE_QUEUED
        return items
