"""Waiting for a query's computations until its deadline, with no timer per query.

Every query that has to wait registers one `Waiter`. All of them share one `DeadlineTimer`:
a heap of (deadline, waiter) and a single event-loop timer armed for the earliest entry.
A waiter answered before its deadline is only marked finished; the heap drops finished
entries from its top whenever one is added or the timer fires, so it holds about the
queries in flight, and the timer wakes the loop only when a query is really late.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

__all__ = ["DeadlineTimer", "Waiter"]

Clock = Callable[[], float]


class Waiter:
    """Calls `callback` once: when every future is done, or at the deadline (whichever
    comes first; `DeadlineTimer.expire` stands for the deadline).

    With `watch=False` it adds no done callbacks: whoever settles the futures calls
    `settled` once per future instead (see `PendingQuery.on_settled`)."""

    __slots__ = ("callback", "futures", "remaining")

    def __init__(
        self, futures: list[asyncio.Future[Any]], callback: Callable[[], None], watch: bool = True
    ) -> None:
        self.callback: Callable[[], None] | None = callback  # None once it has run
        self.futures = futures
        self.remaining = len(futures)
        if watch:
            for future in futures:
                future.add_done_callback(self.settled)

    def settled(self, _: object = None) -> None:
        """One of the futures is done (also their done callback, which passes the future)."""
        self.remaining -= 1
        if self.remaining == 0:
            self.fire()

    def fire(self) -> None:
        """Call the callback now, unless it ran already."""
        callback = self.callback
        if callback is None:
            return
        self.callback = None
        if self.remaining:  # the deadline came first: futures still pending forget us
            for future in self.futures:
                future.remove_done_callback(self.settled)
        callback()


class DeadlineTimer:
    """Fires each registered waiter at its deadline unless it finished before."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Waiter]] = []
        self._order = itertools.count()  # ties keep insertion order; waiters never compare
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf

    def __len__(self) -> int:
        """Entries held (finished ones not dropped yet included)."""
        return len(self._heap)

    def add(self, deadline: float, waiter: Waiter) -> None:
        """Fire `waiter` at `deadline` (monotonic seconds) if it has not finished by then."""
        heap = self._heap
        while heap and heap[0][2].callback is None:  # finished
            heapq.heappop(heap)
        heapq.heappush(heap, (deadline, next(self._order), waiter))
        if deadline < self._armed_for:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay_s = max(0.0, when - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._expire)
        self._armed_for = when

    def _expire(self) -> None:
        """The timer is due: fire every waiter past its deadline, re-arm for the next."""
        self._timer = None
        self._armed_for = math.inf
        now = self._clock()
        heap = self._heap
        while heap and (heap[0][0] <= now or heap[0][2].callback is None):
            heapq.heappop(heap)[2].fire()
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        """Stop the timer (waiters still held are never fired)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = math.inf
