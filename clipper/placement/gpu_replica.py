"""Local replicas that ask for GPUs: they wait for their share, then run with their devices.

Invariants: a replica's grant is released exactly once, when its worker is gone (exit,
crash, stop) or its wait for devices is given up; every release wakes the replicas waiting
for devices, which try again. While one waits, it tells why (`placement_details`), so the
reconciler shows it `unschedulable` with that reason, as on Ray.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from clipper.core.gpu_devices import GpuSample
from clipper.placement.base import ReplicaLaunch, ReplicaPlacement, RunningReplica
from clipper.placement.deferred import DeferredReplica
from clipper.placement.gpu_discovery import GpuProbe
from clipper.placement.gpus import VISIBLE_DEVICES_ENV, GpuAllocator, GpuGrant

__all__ = ["GpuPool", "GpuReplica"]

log = logging.getLogger("clipper.placement.gpus")

START_FAILED_EXIT_CODE = 1
Start = Callable[[ReplicaLaunch], Awaitable[RunningReplica]]


class GpuPool:
    """The machine's GPUs, shared out to local replicas, with a wake-up on each release."""

    def __init__(self, probe: GpuProbe) -> None:
        self.probe = probe
        self.allocator = GpuAllocator(probe.devices)
        self._freed = asyncio.Event()

    def try_grant(self, launch: ReplicaLaunch) -> GpuGrant | None:
        """Devices for `launch` now, or None."""
        return self.allocator.allocate(str(launch.replica_id), launch.resources.num_gpus or 0)

    async def grant(self, launch: ReplicaLaunch) -> GpuGrant:
        """Devices for `launch`, waiting for releases until they fit."""
        while True:
            granted = self.try_grant(launch)
            if granted is not None:
                return granted
            freed = self._freed
            await freed.wait()

    def release(self, grant: GpuGrant) -> None:
        """Give `grant` back and wake the waiters."""
        self.allocator.release(grant)
        self._freed.set()
        self._freed = asyncio.Event()

    def hidden(self, launch: ReplicaLaunch) -> ReplicaLaunch:
        """`launch` with no GPU visible: a replica that asks for none uses none by accident
        (as on Ray); on a machine without GPUs, left as it is."""
        if not self.allocator.devices:
            return launch
        return with_environment(launch, {VISIBLE_DEVICES_ENV: ""})

    def samples(self) -> list[GpuSample]:
        """Each device now: shares handed out, holders, and NVML's measurements."""
        return self.probe.measure(self.allocator.samples())


def with_environment(launch: ReplicaLaunch, env: dict[str, str]) -> ReplicaLaunch:
    """`launch` whose worker gets `env` added to its environment."""
    merged = {**dict(launch.environment), **env}
    return dataclasses.replace(launch, environment=tuple(sorted(merged.items())))


class GpuReplica(DeferredReplica):
    """A replica that holds (or waits for) GPUs, then runs its worker with them."""

    _shield_wait = True  # the task gives the GPUs back, also when a waiter is cancelled

    def __init__(
        self, pool: GpuPool, launch: ReplicaLaunch, start: Start, grant: GpuGrant | None
    ) -> None:
        self._pool = pool
        self._launch = launch
        self._grant = grant
        super().__init__()
        self._task = asyncio.get_running_loop().create_task(self._run(start))

    async def _run(self, start: Start) -> int:
        try:
            if self._grant is None:
                self._grant = await self._pool.grant(self._launch)
            launch = with_environment(self._launch, self._grant.environment())
            log.info("replica %s runs on GPU %s", launch.replica_id,
                     ",".join(map(str, self._grant.devices)))  # fmt: skip
            self._worker = await start(launch)
            return await self._worker.wait()
        except Exception:
            log.exception("could not start replica %s", self._launch.replica_id)
            return START_FAILED_EXIT_CODE
        finally:
            if self._grant is not None:
                self._pool.release(self._grant)

    @property
    def devices(self) -> tuple[int, ...]:
        """The GPUs it holds (none while it waits)."""
        return self._grant.devices if self._grant is not None else ()

    def placement_details(self) -> ReplicaPlacement:
        """Why it waits for GPUs, while it does."""
        if self._grant is not None or self._task.done():
            return ReplicaPlacement()
        num_gpus = self._launch.resources.num_gpus or 0
        return ReplicaPlacement(unschedulable=self._pool.allocator.why_not(num_gpus))
