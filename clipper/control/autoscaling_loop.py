"""The autoscaler's loop: observe each autoscaled version, decide, apply.

Every `interval_s` (a supervised background task of the server) it reads each autoscaled
version's load counters (clipper.dataplane.load, updated per batch), turns the difference
since the last reading into an `Observation`, asks `clipper.control.autoscaler.decide`
and applies a decision that moves the target through `ClusterService.apply_autoscaling`
(the registry, then `refresh()`, as `set_num_replicas` does), recorded as an
`autoscaled` event with its reason. It keeps no state worth persisting: after a restart
it starts from each version's registered target, with an empty history.

A version with no replicas (parked by a deploy that replaced it, or scaled to zero) is
left alone, and while a version's replicas start (ready < target), and for the interval in
which they became ready, its history starts over, so what a starting replica could not
serve does not count against the count being reached.

Bounded where replicas run: by this machine's CPUs for the local placement, by the
cluster's free resources (`ClusterCapacity`, asked off the event loop) on Ray. A replica
the placement cannot place anyway (on Ray, another version took what was free; locally, it
waits for a GPU) is taken off the target with the placement's `unschedulable` reason (rule 2
of clipper.control.autoscaler).

Cold starts: between intervals it awaits the data plane's `ColdStarts`, and a version
autoscaled with `min_replicas` 0 that a query asked for at 0 replicas is scaled to 1 at
once (`wake`), not at the next interval. Its count is in the registry like any other, so a
version scaled to zero stays there across a restart until a query comes.

With several query frontends (clipper.frontends) the control process serves no queries:
`loads` then reads each version's counters summed over the frontends, once per interval,
and the frontends hand their cold starts to this process's `ColdStarts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from clipper.control.autoscaler import (
    Decision,
    MachineLimit,
    Observation,
    ScalingHistory,
    cluster_limit,
    decide,
    machine_limit,
    mean_queue_delay_ratio,
    replica_cpus,
    wake,
)
from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.control.service import ClusterService
from clipper.core.exceptions import ClipperError
from clipper.core.records import ModelVersionRecord
from clipper.core.resources import ResourceRequest
from clipper.core.types import ModelId
from clipper.dataplane.load import LoadReading
from clipper.dataplane.model_serving import ModelServing
from clipper.metrics.server_metrics import ServerMetrics
from clipper.placement.scheduling import FreeCapacity

__all__ = ["AutoscalerLoop", "ClusterCapacity"]

log = logging.getLogger("clipper.control")
Clock = Callable[[], float]
LoadSource = Callable[[], Awaitable[Mapping[ModelId, LoadReading]]]
"""Every version's load counters from elsewhere (the query frontends'); None: the data
plane's own."""


class ClusterCapacity(Protocol):
    """A placement across machines (Ray's) that says what its free resources hold."""

    def free_capacity(self, request: ResourceRequest) -> FreeCapacity | None:
        """How many more replicas of `request` fit now (blocking; None: unknown)."""
        ...


class AutoscalerLoop:
    """Feeds `decide` and applies its decisions, for every autoscaled version."""

    def __init__(
        self,
        service: ClusterService,
        metrics: ServerMetrics | None,
        interval_s: float,
        *,
        cluster: ClusterCapacity | None = None,
        cpu_count: Callable[[], int | None] = os.cpu_count,
        clock: Clock = time.monotonic,
        loads: LoadSource | None = None,
    ) -> None:
        """Replicas run on `cluster` where given, else on this machine, whose
        `cpu_count()` bounds them; `loads`: where the versions' load counters come from
        (default: the data plane)."""
        self.service = service
        self.metrics = metrics
        self.interval_s = interval_s
        self.cluster = cluster
        self._cpu_count = cpu_count
        self._clock = clock
        self._histories: dict[ModelId, ScalingHistory] = {}
        self._readings: dict[ModelId, tuple[float, LoadReading]] = {}
        self._capped_at: dict[ModelId, int] = {}  # a capped hold is recorded once per count
        self._starting: set[ModelId] = set()  # replicas were starting at the last reading
        self._loads = loads
        self._readings_now: Mapping[ModelId, LoadReading] | None = None  # `loads`, this tick

    async def run(self) -> None:
        """Decide every `interval_s`, and start cold versions as queries ask for them,
        until cancelled."""
        cold_starts = self.service.dataplane.cold_starts
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_tick):
                    await cold_starts.wait()
            await self.start_cold(cold_starts.take())
            if loop.time() >= next_tick:
                await self.tick()
                next_tick = loop.time() + self.interval_s

    async def start_cold(self, model_ids: set[ModelId]) -> None:
        """Scale each version a query found at 0 replicas to 1, if it is autoscaled with
        `min_replicas` 0 (any other at 0 stays: parked, or set to 0 by hand)."""
        for model_id in sorted(model_ids, key=str):
            config = self.service.autoscaling.get(model_id)
            record = self.service.snapshot.versions.get(model_id)
            if config is None or not config.scales_to_zero or record is None:
                continue
            if record.num_replicas:
                continue  # starting already
            decision = wake(str(model_id))
            log.info("%s", decision.reason)
            try:
                await self.service.apply_autoscaling(model_id, decision)
            except ClipperError as exc:  # deleted or changed meanwhile
                log.warning("autoscaling %s: %s", model_id, exc)
                continue
            now = self._clock()
            history = self._history(model_id, config)
            history.reset(now)
            history.queried(now)

    async def tick(self) -> None:
        """One round over the autoscaled versions."""
        configs = self.service.autoscaling
        if self._loads is not None and configs:
            self._readings_now = await self._loads()
        for model_id in list(self._histories):
            if model_id not in configs:
                self._forget(model_id)
        for model_id, config in list(configs.items()):
            try:
                await self._tick_version(model_id, config)
            except ClipperError as exc:  # deleted or changed meanwhile: next round
                log.warning("autoscaling %s: %s", model_id, exc)

    async def _tick_version(self, model_id: ModelId, config: AutoscalingConfig) -> None:
        record = self.service.snapshot.versions.get(model_id)
        serving = self.service.dataplane.serving(model_id)
        if record is None or serving is None or record.num_replicas == 0:
            self._forget(model_id)
            if record is not None and config.scales_to_zero:
                self._export_zero(model_id)
            return
        now = self._clock()
        history = self._history(model_id, config)
        observation = self._observe(model_id, serving, now)
        starting = serving.ready_replicas < record.num_replicas
        if starting or model_id in self._starting:
            history.reset(now)
            if observation is not None and observation.queries:
                history.queried(now)
        elif observation is not None:
            history.add(observation)
        if starting:
            self._starting.add(model_id)
        else:
            self._starting.discard(model_id)
        machine = await self._limit(record, serving.ready_replicas)
        decision = decide(
            config, history, now, record.num_replicas, serving.ready_replicas,
            str(model_id), machine, self._unschedulable(model_id) if starting else None,
        )  # fmt: skip
        self._export(model_id, decision, history, config, now)
        await self._apply(model_id, decision, history, now)

    def _history(self, model_id: ModelId, config: AutoscalingConfig) -> ScalingHistory:
        history = self._histories.get(model_id)
        if history is None:
            horizon_s = max(config.upscale_window_s, config.downscale_delay_s) + self.interval_s
            history = self._histories[model_id] = ScalingHistory(horizon_s)
        return history

    async def _apply(
        self, model_id: ModelId, decision: Decision, history: ScalingHistory, now: float
    ) -> None:
        if decision.changes:
            log.info("%s", decision.reason)
            await self.service.apply_autoscaling(model_id, decision)
            history.reset(now)
            self._capped_at.pop(model_id, None)
        elif decision.capped and self._capped_at.get(model_id) != decision.current:
            log.info("%s", decision.reason)
            await self.service.apply_autoscaling(model_id, decision)
            self._capped_at[model_id] = decision.current

    def _observe(self, model_id: ModelId, serving: ModelServing, now: float) -> Observation | None:
        """What the version did since the last reading (None at the first)."""
        if self._readings_now is None:
            reading = serving.load.reading()
        else:
            reading = self._readings_now.get(model_id, LoadReading())
        previous = self._readings.get(model_id)
        self._readings[model_id] = (now, reading)
        if previous is None or now <= previous[0]:
            return None
        at, before = previous
        interval_s = now - at
        slo_s = serving.policy.slo_s
        expired = reading.expired - before.expired
        queries = reading.queries - before.queries + expired
        waited_s = reading.queue_delay_s - before.queue_delay_s + expired * slo_s
        ratio = waited_s / queries / slo_s if queries else 0.0
        slots = max(1, serving.ready_replicas) * serving.policy.max_in_flight
        utilization = (reading.busy_s - before.busy_s) / (interval_s * slots)
        return Observation(now, interval_s, ratio, utilization, queries)

    async def _limit(self, record: ModelVersionRecord, running: int) -> MachineLimit | None:
        """How many replicas of the version the machine, or the cluster, holds (None: no
        bound known)."""
        if self.cluster is None:
            return self._machine(record)
        free = await asyncio.to_thread(self.cluster.free_capacity, record.resources)
        return cluster_limit(running, free)

    def _unschedulable(self, model_id: ModelId) -> str | None:
        """Why the version's replicas that wait cannot be placed, if the placement says."""
        reasons = [
            status.placement.unschedulable
            for status in self.service.reconciler.replicas_of(model_id)
            if status.placement.unschedulable
        ]
        return reasons[0] if reasons else None

    def _machine(self, record: ModelVersionRecord) -> MachineLimit | None:
        """How many replicas of the version this machine's CPUs hold."""
        others = sum(
            replica_cpus(other.resources) * other.num_replicas
            for other in self.service.snapshot.versions.values()
            if other.model_id != record.model_id and not other.containerless
        )
        return machine_limit(self._cpu_count() or 1, replica_cpus(record.resources), others)

    def _export(
        self,
        model_id: ModelId,
        decision: Decision,
        history: ScalingHistory,
        config: AutoscalingConfig,
        now: float,
    ) -> None:
        if self.metrics is None:
            return
        labels = (model_id.name, model_id.version)
        ratio = mean_queue_delay_ratio(history.window(now, config.upscale_window_s))
        self.metrics.autoscaler_desired.labels(*labels).set(decision.desired)
        self.metrics.autoscaler_current.labels(*labels).set(decision.current)
        self.metrics.autoscaler_queue_delay_ratio.labels(*labels).set(ratio)

    def _export_zero(self, model_id: ModelId) -> None:
        """A version scaled to zero keeps its gauges, at 0."""
        if self.metrics is None:
            return
        labels = (model_id.name, model_id.version)
        self.metrics.autoscaler_desired.labels(*labels).set(0)
        self.metrics.autoscaler_current.labels(*labels).set(0)
        self.metrics.autoscaler_queue_delay_ratio.labels(*labels).set(0)

    def _forget(self, model_id: ModelId) -> None:
        self._histories.pop(model_id, None)
        self._readings.pop(model_id, None)
        self._capped_at.pop(model_id, None)
        self._starting.discard(model_id)
        if self.metrics is not None:
            self.metrics.forget_autoscaled(model_id.name, model_id.version)
