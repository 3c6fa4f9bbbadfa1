"""Admission of connections to one port: a cap in all, a lower cap per client address, and
idle connections given up first when the port is full.

A flood of connections that send nothing must not lock anyone out: when the port holds
`max_connections`, a new connection closes the idle one that has waited longest (no request
in progress; its client opens a new one when it has something to send) and is refused only
when every connection is mid-request. One address may hold at most `max_per_client`, so
one client mid-request on every connection it may open still leaves room for the others.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ConnectionGate", "GatedConnection", "default_per_client"]


class GatedConnection(Protocol):
    """What the gate asks of a connection (asked only when the port is full)."""

    def is_idle(self) -> bool:
        """True while no request is in progress on it."""

    def idle_rank(self) -> float:
        """Smaller for the connection to give up first (e.g. when its idle time ends)."""

    def evict(self) -> None:
        """Close it now, to make room (it is idle)."""


def default_per_client(max_connections: int) -> int:
    """The per-address cap when the settings name none: half of the port's."""
    return max(1, max_connections // 2)


class ConnectionGate:
    """The connections of one port, counted in all and per client address."""

    def __init__(self, max_connections: int, max_per_client: int | None = None) -> None:
        self.max_connections = max_connections
        self.max_per_client = (
            max_per_client if max_per_client is not None else default_per_client(max_connections)
        )
        self._open: dict[GatedConnection, str | None] = {}
        self._per_client: dict[str, int] = {}
        self.evicted = 0  # idle connections closed to make room, since start
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: GatedConnection, client: str | None) -> str | None:
        """None when `connection` is admitted (and counted until `release`); else why not."""
        if client is not None and self._per_client.get(client, 0) >= self.max_per_client:
            self.refused += 1
            return f"too many connections from {client} (max_connections_per_client)"
        if len(self._open) >= self.max_connections and not self._evict_one():
            self.refused += 1
            return "too many connections (max_connections)"
        self._open[connection] = client
        if client is not None:
            self._per_client[client] = self._per_client.get(client, 0) + 1
        return None

    def release(self, connection: GatedConnection) -> None:
        """Stop counting `connection` (closed); a second call does nothing."""
        if connection not in self._open:
            return
        client = self._open.pop(connection)
        if client is not None:
            left = self._per_client[client] - 1
            if left:
                self._per_client[client] = left
            else:
                del self._per_client[client]

    def _evict_one(self) -> bool:
        idle = [connection for connection in self._open if connection.is_idle()]
        if not idle:
            return False
        victim = min(idle, key=lambda connection: connection.idle_rank())
        self.release(victim)
        victim.evict()
        self.evicted += 1
        return True
