"""Cold starts: queries for a version scaled to zero, handed to whoever starts a replica.

A version that may scale to zero (autoscaled with `min_replicas` 0) has a `wake` callback
on its `ModelServing`: the dispatcher calls it when a query is queued and no replica is
attached (never on the path where a replica takes the batch). The data plane's one
`ColdStarts` collects those versions; the autoscaler's loop (clipper.control) awaits it and
starts a replica at once, without waiting for its next interval. The queries wait in the
batch queue meanwhile, until a replica takes them or their deadline passes.
"""

from __future__ import annotations

import asyncio

from clipper.core.types import ModelId

__all__ = ["COLD", "ColdStarts", "cold_explanation"]

COLD = "Model was cold"
"""The start of the explanation of a query answered by the default during a cold start
(the reason the metrics count it under)."""


def cold_explanation(model_id: ModelId) -> str:
    """Why a query for a version scaled to zero got the default: its deadline came first."""
    return f"{COLD}: {model_id} was scaled to zero; a replica is starting"


class ColdStarts:
    """The versions queried while they had no replica, not yet taken by the control plane.

    Invariant: `wait` returns once `ask` was called since the last `take`; asking for a
    version already pending costs a set lookup.
    """

    def __init__(self) -> None:
        self._pending: set[ModelId] = set()
        self._asked = asyncio.Event()

    def ask(self, model_id: ModelId) -> None:
        """A query for `model_id` is queued and no replica is attached (a callback: no I/O)."""
        if model_id not in self._pending:
            self._pending.add(model_id)
            self._asked.set()

    async def wait(self) -> None:
        """Until some version is pending."""
        await self._asked.wait()

    def take(self) -> set[ModelId]:
        """The pending versions, which are pending no longer."""
        taken, self._pending = self._pending, set()
        self._asked.clear()
        return taken
