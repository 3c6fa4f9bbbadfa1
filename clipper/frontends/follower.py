"""A frontend's view of the registry: reloaded whenever another process commits a change.

The control process writes the registry (SQLite in WAL mode, so readers never wait on
it); a frontend polls `PRAGMA data_version` every `FOLLOW_INTERVAL_S`, one cheap read
that changes only when another connection committed, and then applies a fresh snapshot.
So an admin change reaches every frontend within `FOLLOW_INTERVAL_S` plus one snapshot
read, and a frontend keeps serving the last state it read while the control process is
down.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

from clipper.control.store import Registry
from clipper.core.records import RegistrySnapshot

__all__ = ["FOLLOW_INTERVAL_S", "RegistryFollower"]

log = logging.getLogger("clipper.frontends")
FOLLOW_INTERVAL_S = 0.1


class RegistryFollower:
    """Applies the registry's snapshot with `apply` at start and after each change."""

    def __init__(
        self,
        registry: Registry,
        apply: Callable[[RegistrySnapshot], None],
        interval_s: float = FOLLOW_INTERVAL_S,
    ) -> None:
        self._registry = registry
        self._apply = apply
        self._interval_s = interval_s
        self._version: int | None = None

    def refresh(self) -> None:
        """Read and apply the registry's state now."""
        self._version = self._registry.data_version()
        self._apply(self._registry.snapshot())

    async def run(self) -> None:
        """Poll for changes until cancelled (a locked or failing read is tried again)."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                if self._registry.data_version() != self._version:
                    self.refresh()
            except sqlite3.Error as exc:
                log.warning("could not read the registry (%s); trying again", exc)
