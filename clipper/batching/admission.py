"""Admission control: whether a model version can still answer a new query by its deadline.

Pure logic, no I/O: `ModelServing` refreshes an `Admission` from its replicas once per batch
(and when a replica or the policy changes); the query path reads it once per query.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

__all__ = ["UNBOUNDED", "Admission", "derived_max_queued"]

UNBOUNDED = sys.maxsize
"""`max_queued` of a version with neither an explicit bound nor a measurement yet."""


class Admission:
    """The estimate of when a newly queued query would be answered, and the queue's bound.

    With `per_round` queries finishing every `batch_latency_s` (the replicas' batch sizes
    times their slots), the query that finds `queued` inputs ahead of it is answered about

        now + batch_latency_s * (queued // per_round + 1 + (0 if a slot is free else 1))

    (the batches in flight are counted as a whole batch latency still to go: the estimate
    errs late, so the queries it admits make their deadline).

    Under priorities `queued` counts only the inputs of the query's priority or higher (those
    served before it; see `BatchQueue.ahead_of`), and the bound `max_queued` holds for the
    whole queue (a full one gives up a lower-priority query: `ModelServing.admit_ranked`).

    Invariants: the check is a few attribute reads and comparisons, no allocation. A query
    that would be dispatched at once (a free slot and fewer than `per_round` queued ahead)
    is always admitted: the estimate is refreshed only by batches, so a stale one must never
    stop the batches that refresh it. A version with no measurement yet (`batch_latency_s`
    0) admits every query under `max_queued`.
    """

    __slots__ = ("batch_latency_s", "clock", "free_slots", "max_queued", "per_round")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.batch_latency_s = 0.0
        self.per_round = 1
        self.free_slots = 0
        self.max_queued = UNBOUNDED

    def admits(self, queued: int, deadline: float) -> bool:
        """Whether a query with `queued` inputs ahead of it can be answered by `deadline`
        (monotonic seconds); the clock is read only when the answer depends on it."""
        if queued >= self.max_queued:
            return False
        per_round = self.per_round
        if self.free_slots > 0:
            if queued < per_round:
                return True
            return self.clock() + self.batch_latency_s * (queued // per_round + 1) <= deadline
        return self.clock() + self.batch_latency_s * (queued // per_round + 2) <= deadline

    def full(self, queued: int) -> bool:
        """Whether the refusal of a query with `queued` ahead is the hard bound's."""
        return queued >= self.max_queued

    def retry_after_s(self, queued: int) -> float:
        """About when the queue ahead of a refused query will have drained (seconds)."""
        return self.batch_latency_s * (queued // self.per_round + 1)


def derived_max_queued(per_round: int, batch_latency_s: float, longest_slo_s: float) -> int:
    """What the replicas can finish within the longest SLO of the apps using the version
    (at least one round); UNBOUNDED before any batch latency is known."""
    if batch_latency_s <= 0:
        return UNBOUNDED
    return max(per_round, math.floor(per_round * longest_slo_s / batch_latency_s))
