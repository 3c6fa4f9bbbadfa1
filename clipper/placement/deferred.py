"""A replica whose worker starts only once something it waits for is there (a model
environment's build, free GPUs): until then it has no pid, and stopping it cancels the wait,
never what it waits for. Subclasses set `_task` (the wait, then the worker's run, returning
its exit code) and `_worker` once it started."""

from __future__ import annotations

import asyncio

from clipper.placement.base import RunningReplica

__all__ = ["STOPPED_WHILE_WAITING", "DeferredReplica"]

STOPPED_WHILE_WAITING = -15
"""The exit code of a replica stopped before its worker started (as SIGTERM's)."""


class DeferredReplica:
    """The RunningReplica side of a replica that waits before its worker starts."""

    _task: asyncio.Task[int]
    _shield_wait = False
    """True: a cancelled `wait` leaves the task running (it holds something to give back)."""

    def __init__(self) -> None:
        self._worker: RunningReplica | None = None

    @property
    def pid(self) -> int | None:
        """The worker's pid once it started."""
        return self._worker.pid if self._worker is not None else None

    async def wait(self) -> int:
        """Wait for what it waits for and then the worker; the exit code."""
        try:
            if self._shield_wait:
                return await asyncio.shield(self._task)
            return await self._task
        except asyncio.CancelledError:
            if self._task.cancelled():
                return STOPPED_WHILE_WAITING
            raise

    def terminate(self) -> None:
        """SIGTERM the worker, or stop waiting."""
        if self._worker is not None:
            self._worker.terminate()
        else:
            self._task.cancel()

    def kill(self) -> None:
        """SIGKILL the worker, or stop waiting."""
        if self._worker is not None:
            self._worker.kill()
        else:
            self._task.cancel()
