"""What a model version's queue and replicas did, as cumulative counters for the autoscaler.

Updated once per batch (never per query), read by whoever samples them: the autoscaler
takes the difference of two readings (clipper.control.autoscaling_loop). Plain numbers
on one event loop: no lock, no Prometheus text to parse.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoadCounters", "LoadReading"]


@dataclass(frozen=True, slots=True)
class LoadReading:
    """The counters at one moment (every field only grows)."""

    queries: int = 0
    """Queries dispatched to a replica."""
    queue_delay_s: float = 0.0
    """Their time in the batch queue, summed."""
    expired: int = 0
    """Queries whose deadline passed while they were queued (never dispatched)."""
    busy_s: float = 0.0
    """Round trips of the batches that came back, summed (replica busy time)."""


class LoadCounters:
    """The cumulative load of one model version."""

    __slots__ = ("busy_s", "expired", "queries", "queue_delay_s")

    def __init__(self) -> None:
        self.queries = 0
        self.queue_delay_s = 0.0
        self.expired = 0
        self.busy_s = 0.0

    def dispatched(self, queries: int, queue_delay_s: float) -> None:
        """A batch of `queries` that waited `queue_delay_s` together left the queue."""
        self.queries += queries
        self.queue_delay_s += queue_delay_s

    def reading(self) -> LoadReading:
        """The counters now."""
        return LoadReading(self.queries, self.queue_delay_s, self.expired, self.busy_s)
