"""The reconciler: keeps the running replicas equal to what the registry asks for.

Invariants: at most one process per ReplicaId; a replica that exits while still wanted is
restarted after an exponential backoff (initial * 2**(crashes-1), capped), reset once it
has been ready for a while; a replica no longer wanted is stopped and forgotten. A replica
that exits with MEMORY_LIMIT_EXIT_CODE is reported as having exceeded its memory limit (in
`last_error`, which operators see, and the server log) and restarted like any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from clipper.core.types import ModelId, ReplicaId
from clipper.placement.base import (
    Placement,
    ReplicaLaunch,
    ReplicaPlacement,
    RunningReplica,
    placement_details,
)
from clipper.worker.rlimits import MEMORY_LIMIT_EXCEEDED, MEMORY_LIMIT_EXIT_CODE

__all__ = ["Reconciler", "ReplicaState", "ReplicaStatus"]

log = logging.getLogger("clipper.reconciler")

STOP_GRACE_S = 5.0
STABLE_AFTER_S = 10.0
LOG_TAIL_BYTES = 4000


class ReplicaState(str, enum.Enum):  # noqa: UP042 (str() and f-strings of members unchanged)
    """Life cycle of a replica, as shown to operators.

    UNSCHEDULABLE is a STARTING replica that its placement cannot place yet (e.g. no Ray
    node has the resources it asks for); it is shown, never stored, and the replica starts
    as soon as the placement can place it.
    """

    STARTING = "starting"
    UNSCHEDULABLE = "unschedulable"
    READY = "ready"
    BACKING_OFF = "backing_off"
    CRASH_LOOPING = "crash_looping"
    DRAINING = "draining"


@dataclass(slots=True)
class ReplicaStatus:
    """What the reconciler knows of one replica."""

    launch: ReplicaLaunch
    state: ReplicaState = ReplicaState.STARTING
    process: RunningReplica | None = None
    crashes: int = 0
    ever_ready: bool = False
    ready_since: float | None = None
    restart_at: float = 0.0
    last_exit_code: int | None = None
    last_error: str = ""

    @property
    def pid(self) -> int | None:
        """The worker's pid while it runs."""
        return self.process.pid if self.process is not None else None

    @property
    def placement(self) -> ReplicaPlacement:
        """Its node, or why it cannot be placed, where the placement tells."""
        return placement_details(self.process)


class Reconciler:
    """Starts, restarts and stops replicas to match the desired set."""

    def __init__(
        self,
        placement: Placement,
        backoff_initial_s: float,
        backoff_max_s: float,
        clock: Callable[[], float] = time.monotonic,
        drain: Callable[[ReplicaId], Awaitable[None]] | None = None,
        credentials: Callable[[ReplicaId], str] | None = None,
    ) -> None:
        self._placement = placement
        self._drain = drain
        self._credentials = credentials  # a fresh one-time credential per start
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._desired: dict[ReplicaId, ReplicaLaunch] = {}
        self.replicas: dict[ReplicaId, ReplicaStatus] = {}
        self._wake = asyncio.Event()
        self.changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- inputs -------------------------------------------------------------------

    def set_desired(self, launches: list[ReplicaLaunch]) -> None:
        """Replace the desired set of replicas and reconcile soon."""
        self._desired = {launch.replica_id: launch for launch in launches}
        self._wake.set()

    def desired_ids(self) -> frozenset[ReplicaId]:
        """The replicas wanted now."""
        return frozenset(self._desired)

    def mark_ready(self, replica_id: ReplicaId) -> None:
        """The replica's worker registered."""
        status = self.replicas.get(replica_id)
        if status is not None and status.state is ReplicaState.STARTING:
            status.state = ReplicaState.READY
            status.ever_ready = True
            status.ready_since = self._clock()
            self._notify()

    def replicas_of(self, model_id: ModelId) -> list[ReplicaStatus]:
        """Statuses of one version's replicas, by replica number."""
        found = [s for rid, s in self.replicas.items() if rid.model == model_id]
        return sorted(found, key=lambda status: status.launch.replica_id.replica)

    # -- loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile whenever woken, and at every backoff expiry."""
        while not self._closing:
            await self._reconcile()
            timeout = self._next_restart_in()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    def _next_restart_in(self) -> float | None:
        waiting = [
            s.restart_at
            for s in self.replicas.values()
            if s.state in (ReplicaState.BACKING_OFF, ReplicaState.CRASH_LOOPING)
        ]
        return max(0.0, min(waiting) - self._clock()) if waiting else None

    async def _reconcile(self) -> None:
        for replica_id, status in list(self.replicas.items()):
            if replica_id not in self._desired and status.state is not ReplicaState.DRAINING:
                self._stop(status)
        now = self._clock()
        for replica_id, launch in self._desired.items():
            known = self.replicas.get(replica_id)
            if known is None:
                fresh = self.replicas[replica_id] = ReplicaStatus(launch)
                await self._start(fresh)
            elif known.process is None and known.restart_at <= now:
                known.launch = launch
                await self._start(known)

    async def _start(self, status: ReplicaStatus) -> None:
        status.state = ReplicaState.STARTING
        status.ready_since = None
        if self._credentials is not None:
            replica_id = status.launch.replica_id
            credential = self._credentials(replica_id)
            status.launch = dataclasses.replace(status.launch, credential=credential)
        try:
            status.process = await self._placement.start(status.launch)
        except Exception as exc:
            log.exception("could not start replica %s", status.launch.replica_id)
            status.last_error = f"could not start: {exc}"
            self._schedule_restart(status)
            return
        log.info("started replica %s (pid %s)", status.launch.replica_id, status.pid)
        self._spawn(self._watch(status, status.process))
        self._notify()

    async def _watch(self, status: ReplicaStatus, process: RunningReplica) -> None:
        exit_code = await process.wait()
        if status.process is not process:
            return
        status.process = None
        status.last_exit_code = exit_code
        replica_id = status.launch.replica_id
        if status.state is ReplicaState.DRAINING or replica_id not in self._desired:
            self.replicas.pop(replica_id, None)
            log.info("replica %s stopped", replica_id)
        else:
            status.last_error = _exit_report(status.launch, exit_code)
            if exit_code == MEMORY_LIMIT_EXIT_CODE:
                log.warning("replica %s exited: %s", replica_id, MEMORY_LIMIT_EXCEEDED)
            else:
                log.warning("replica %s exited with code %s", replica_id, exit_code)
            self._schedule_restart(status)
        self._notify()
        self._wake.set()

    def _schedule_restart(self, status: ReplicaStatus) -> None:
        now = self._clock()
        if status.ready_since is not None and now - status.ready_since > STABLE_AFTER_S:
            status.crashes = 0
        status.crashes += 1
        delay = min(self._backoff_max_s, self._backoff_initial_s * 2 ** (status.crashes - 1))
        status.restart_at = now + delay
        looping = status.crashes >= 3 and delay >= self._backoff_max_s / 4
        status.state = ReplicaState.CRASH_LOOPING if looping else ReplicaState.BACKING_OFF
        status.ready_since = None

    def _stop(self, status: ReplicaStatus) -> None:
        status.state = ReplicaState.DRAINING
        process = status.process
        if process is None:
            self.replicas.pop(status.launch.replica_id, None)
            self._notify()  # waiters for the replica to be gone
            return
        self._spawn(self._stop_gracefully(status.launch.replica_id, process))

    async def _stop_gracefully(self, replica_id: ReplicaId, process: RunningReplica) -> None:
        """Drain in-flight batches (the worker then exits by itself), else SIGTERM, then
        SIGKILL after the grace period."""
        if self._drain is not None and not self._closing:
            with contextlib.suppress(Exception):
                await self._drain(replica_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
                return
        process.terminate()
        await _kill_after(process, STOP_GRACE_S)

    def kill(self, replica_id: ReplicaId) -> None:
        """Kill a replica's worker (hung); it is restarted like any crash."""
        status = self.replicas.get(replica_id)
        if status is not None and status.process is not None:
            status.process.kill()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        self._spawn(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def close(self) -> None:
        """Stop every replica and wait for the processes to exit."""
        self._closing = True
        self._desired = {}
        self._wake.set()
        processes = [s.process for s in self.replicas.values() if s.process is not None]
        for status in list(self.replicas.values()):
            self._stop(status)
        await asyncio.gather(
            *(asyncio.wait_for(p.wait(), STOP_GRACE_S + 1) for p in processes),
            return_exceptions=True,
        )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _kill_after(process: RunningReplica, grace_s: float) -> None:
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        process.kill()


def _exit_report(launch: ReplicaLaunch, exit_code: int) -> str:
    """What operators see of an exit: the worker log's tail, then (last, so a shortened
    report keeps it) the memory-limit verdict."""
    tail = _read_tail(launch)
    if exit_code != MEMORY_LIMIT_EXIT_CODE:
        return tail
    limit = launch.resources.limits.memory_limit_bytes
    if limit:
        return f"{tail}\nclipper: {MEMORY_LIMIT_EXCEEDED} (limit {limit} bytes); worker stopped"
    return (
        f"{tail}\nclipper: {MEMORY_LIMIT_EXCEEDED} (the cluster's default, replica_memory_limit "
        f"{launch.default_memory_limit}; the version's resources may set memory_limit, 0 for "
        "none); worker stopped"
    )


def _read_tail(launch: ReplicaLaunch) -> str:
    try:
        with open(launch.log_path, "rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - LOG_TAIL_BYTES))
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""
