"""The process's open-files limit, and how the server's ports share it.

Every connection holds a file descriptor. At the limit (`RLIMIT_NOFILE`) the process can
open nothing else: no registry transaction, log file or socket to a worker. So the server
raises its soft limit to the hard one at start, keeps a reserve for everything that is not
a client connection, and derives each port's connection cap from what is left: the caps
together never exceed it, whatever the settings ask.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

__all__ = ["ConnectionBudget", "connection_budget", "raise_open_files_limit"]

log = logging.getLogger("clipper.server")

RESERVE_MIN = 256
"""Descriptors never given to client connections: files, the registry, sockets and pipes of
workers, environment builds (at least this many, or a quarter of the limit if more)."""
_UNLIMITED_TARGET = 1 << 20  # what an unlimited hard limit is raised to (Linux's nr_open)
# The share of what the reserve leaves that each port may hold (the rest is slack).
_QUERY_SHARE, _GRPC_SHARE, _ADMIN_SHARE, _RPC_SHARE = 0.60, 0.20, 0.10, 0.05


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """The connection caps of the server's ports under one open-files limit."""

    open_files: int
    query: int
    admin: int
    grpc: int
    rpc_unregistered: int
    """RPC connections not yet registered (registered ones are the replicas)."""

    def describe(self) -> str:
        """One log line: what was set."""
        return (
            f"open files {self.open_files}; connections at most: query {self.query}, "
            f"admin {self.admin}, gRPC {self.grpc}, unregistered RPC {self.rpc_unregistered}"
        )


def raise_open_files_limit() -> int:
    """Raise the soft `RLIMIT_NOFILE` to the hard limit (logged); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if target <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # e.g. above the kernel's nr_open
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
        return soft
    log.info("open-files limit raised from %d to %d", soft, target)
    return target


def connection_budget(
    open_files: int, query_max: int, admin_max: int, grpc_max: int, rpc_unregistered_max: int
) -> ConnectionBudget:
    """Each port's cap: what its setting asks, at most its share of the limit's remainder
    after the reserve (and at least one)."""
    reserve = max(RESERVE_MIN, open_files // 4)
    available = max(open_files - reserve, 0)

    def cap(asked: int, share: float) -> int:
        return max(1, min(asked, int(available * share)))

    return ConnectionBudget(
        open_files=open_files,
        query=cap(query_max, _QUERY_SHARE),
        admin=cap(admin_max, _ADMIN_SHARE),
        grpc=cap(grpc_max, _GRPC_SHARE),
        rpc_unregistered=cap(rpc_unregistered_max, _RPC_SHARE),
    )
