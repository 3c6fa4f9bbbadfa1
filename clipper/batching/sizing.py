"""Batch sizing policies: pure logic, no I/O, so tests drive them directly."""

from __future__ import annotations

from typing import Protocol

__all__ = ["AimdBatchSizer", "BatchSizer", "FixedBatchSizer", "make_sizer"]

ADAPTIVE_MAX_BATCH_SIZE = 512


class BatchSizer(Protocol):
    """Decides the largest batch a replica takes next, learning from each batch's latency."""

    @property
    def size(self) -> int:
        """The largest batch to take next."""
        ...

    def observe(self, batch_size: int, latency_s: float) -> None:
        """Learn from a finished batch of `batch_size` inputs that took `latency_s`."""
        ...


class FixedBatchSizer:
    """A fixed maximum: under saturation every batch holds exactly `size` inputs."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        self._size = size

    @property
    def size(self) -> int:
        """The fixed maximum."""
        return self._size

    def observe(self, batch_size: int, latency_s: float) -> None:
        """Fixed: nothing to learn."""


class AimdBatchSizer:
    """Additive increase, multiplicative decrease of the batch size against an SLO.

    Invariant: 1 <= size <= max_size. A full batch whose latency stays below
    slo_s * (1 - headroom) grows the size by `increase`; a batch over that target shrinks
    it by `decrease`. A batch smaller than the current size says nothing about larger ones.
    With `slow_start` (as TCP's) a full batch under the target doubles the size instead,
    until the first batch over it: `growing` is True until then.
    """

    def __init__(
        self,
        slo_s: float,
        max_size: int = ADAPTIVE_MAX_BATCH_SIZE,
        increase: int = 1,
        decrease: float = 0.9,
        headroom: float = 0.1,
        slow_start: bool = False,
    ) -> None:
        self._target_s = slo_s * (1.0 - headroom)
        self._max_size = max_size
        self._increase = increase
        self._decrease = decrease
        self._size = 1.0
        self.growing = slow_start

    @property
    def max_size(self) -> int:
        """The largest size it may reach."""
        return self._max_size

    @property
    def size(self) -> int:
        """The current maximum batch size."""
        return max(1, int(self._size))

    def observe(self, batch_size: int, latency_s: float) -> None:
        """Grow after a full batch under the target, shrink after any batch over it."""
        if latency_s > self._target_s:
            self._size = max(1.0, self._size * self._decrease)
            self.growing = False
        elif batch_size >= self.size:
            grown = self._size * 2 if self.growing else self._size + self._increase
            self._size = min(float(self._max_size), grown)

    def set_slo(self, slo_s: float, headroom: float = 0.1) -> None:
        """Follow a changed SLO."""
        self._target_s = slo_s * (1.0 - headroom)


def make_sizer(batch_size: int, slo_s: float) -> BatchSizer:
    """`batch_size=-1` (or 0) is adaptive (AIMD, with slow start: growing by one per full
    batch, a CNN at 70 ms a batch took over 2 s to reach batches of 32); a positive value
    is a fixed maximum."""
    if batch_size > 0:
        return FixedBatchSizer(batch_size)
    return AimdBatchSizer(slo_s, slow_start=True)
