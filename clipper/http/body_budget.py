"""A port's budget for request bodies buffered at once, and giving the memory back after.

Each connection buffers at most one small body at a time (under `LARGE_BODY_BYTES`; reading
pauses while a request waits), so the port's small bodies are bounded by its connection cap.
Large bodies are what a few hundred clients sending most of a 16 MiB body, then stalling,
turn into gigabytes: each one reserves its declared length from the budget before a byte of
it is read (a chunked body reserves as it arrives), and a body the budget cannot hold is
refused with 503 `ServerBusy` at once. Reservations end when the request is answered or
its connection closes. When the buffered bytes fall back to none after a burst of at least
`RETURN_AFTER_BYTES`, the freed memory goes back to the OS (clipper.core.process_memory; a
trim costs about a millisecond, less than receiving the burst did).
"""

from __future__ import annotations

from collections.abc import Callable

from clipper.core.process_memory import physical_memory_bytes, return_freed_memory

__all__ = ["BodyBudget", "default_body_budget_bytes"]

MIN_DEFAULT_BYTES = 64 * 1024 * 1024
RETURN_AFTER_BYTES = 16 * 1024 * 1024
"""A burst that buffered this much at its peak is given back to the OS once it is over."""


def default_body_budget_bytes() -> int:
    """An eighth of the machine's memory, at least 64 MiB."""
    return max(MIN_DEFAULT_BYTES, physical_memory_bytes() // 8)


class BodyBudget:
    """Bytes reserved for request bodies on one port, at most `limit_bytes`."""

    def __init__(
        self, limit_bytes: int, give_back: Callable[[], object] = return_freed_memory
    ) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0
        self.refused = 0
        self._peak = 0  # since memory was last given back
        self._give_back = give_back

    def reserve(self, size: int) -> bool:
        """Reserve `size` bytes; False (nothing reserved) when the budget cannot hold them."""
        if self.in_use + size > self.limit_bytes:
            self.refused += 1
            return False
        self.in_use += size
        self._peak = max(self._peak, self.in_use)
        return True

    def release(self, size: int) -> None:
        """End a reservation; back to none after a burst, the freed memory goes to the OS."""
        self.in_use = max(0, self.in_use - size)
        if self.in_use == 0 and self._peak >= RETURN_AFTER_BYTES:
            self._peak = 0
            self._give_back()
