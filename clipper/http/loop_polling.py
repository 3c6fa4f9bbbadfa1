"""Keeping the server's event loop polling for a while after each read, instead of sleeping.

An event loop with nothing to do sleeps in the kernel (epoll) until the next read, and on a
virtual CPU the wake-up costs more than the work of a small query: under load the query
port and the workers' replies keep it waking every few tens of microseconds. While reads
come close together, `LoopPoller` keeps one callback scheduled on the loop, so the loop
polls its sockets without sleeping (a loop with ready callbacks waits for I/O with no
timeout) until `spin_s` passes without a read. Under sparse traffic it does not poll at
all, so an idle server costs nothing. `python -m benchmarks.server_spin` measures it.

Invariant: at most one `_poll` callback is scheduled at a time; it reschedules itself only
while the window opened by the last read is still open.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["DENSE_TRAFFIC_SPINS", "LoopPoller"]

DENSE_TRAFFIC_SPINS = 4
"""A read opens a polling window only when it came within this many windows of the last."""
_clock = time.perf_counter


class LoopPoller:
    """`touch()` on every read of a socket the loop serves; 0 s turns polling off."""

    __slots__ = ("_dense_s", "_last_read", "_polling", "_spin_s", "_until")

    def __init__(self, spin_s: float) -> None:
        self._spin_s = spin_s
        self._dense_s = DENSE_TRAFFIC_SPINS * spin_s
        self._last_read = -float("inf")
        self._until = 0.0  # the current window's end (perf_counter seconds)
        self._polling = False  # a `_poll` callback is scheduled

    @property
    def polling(self) -> bool:
        """Whether the loop is being kept polling now."""
        return self._polling

    def touch(self) -> None:
        """A read happened: poll for `spin_s` from now if reads come close together."""
        if self._spin_s <= 0:
            return
        now = _clock()
        dense = now - self._last_read < self._dense_s
        self._last_read = now
        if not dense:
            return
        self._until = now + self._spin_s
        if not self._polling:
            self._polling = True
            asyncio.get_running_loop().call_soon(self._poll)

    def _poll(self) -> None:
        if _clock() < self._until:
            asyncio.get_running_loop().call_soon(self._poll)
        else:
            self._polling = False
