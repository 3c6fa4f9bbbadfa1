"""A frontend's side of what the control process decides from the query traffic.

With several frontends the control process serves no queries, so its autoscaler, cold
starts, canary rollouts and drains act on what the frontends see (`control_signals.py`
is its side). A frontend:

- answers `load` with its versions' cumulative load counters (clipper.dataplane.load),
  which the control process sums;
- follows the registry's running rollouts: each one's split (share, shadow) applies on
  its own data plane within the registry follower's delay (once both versions have a
  replica registered here), with fresh windows when the step changes; `rollout_windows`
  answers them (reset first when the control process reset its own since: a warm-up, a
  resume);
- marks the versions that may scale to zero, and hands each cold start (a query queued
  for a version with no replica) to the control process at once (`wake`), retried while
  the control process does not answer; the queries wait in this frontend's queue;
- answers `drain` (a replica leaving for a scale-down) once its batches in flight on
  it are back, having sent it nothing new meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from dataclasses import astuple
from pathlib import Path
from typing import Any

from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.control.rollout_plan import RolloutPlan
from clipper.control.store import Registry
from clipper.core.records import RolloutRecord
from clipper.core.types import ModelId
from clipper.dataplane.dataplane import DataPlane
from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.rollout_split import RolloutSplit
from clipper.frontends.peer import PeerUnreachable, ask_peer

__all__ = ["FrontendSignals"]

WAKE_RETRY_S = 0.2
QUEUE_POLL_S = 0.02


class FrontendSignals:
    """The load, rollout, cold-start and drain signals of one frontend's data plane."""

    def __init__(self, dataplane: DataPlane, control_peer: Path) -> None:
        self._dataplane = dataplane
        self._control_peer = control_peer
        self._steps: dict[str, tuple[int, int]] = {}  # model -> (rollout id, step) applied
        self._running: dict[str, RolloutRecord] = {}  # the registry's, by model

    # -- following the registry -------------------------------------------------------

    def follow(self, registry: Registry) -> None:
        """After each snapshot: the scale-to-zero versions and the running rollouts'
        splits, as the registry has them."""
        self._dataplane.set_scale_to_zero([
            ModelId(name, version)
            for (name, version), (config, _) in registry.autoscaling().items()
            if AutoscalingConfig.parse(config).scales_to_zero
        ])  # fmt: skip
        self._running = {record.model: record for record in registry.running_rollouts()}
        self.apply_splits()

    def apply_splits(self) -> None:
        """Each running rollout's split at its step, once both its versions have a replica
        here (as the control process starts one once they are ready: a canary asked before
        its replica registered here would miss); the others' splits ended."""
        for model in self._dataplane.split_models():
            if model not in self._running:
                self._dataplane.end_split(model)
                self._steps.pop(model, None)
        for record in self._running.values():
            steps = RolloutPlan.parse(record.plan).steps
            step = steps[min(record.step, len(steps) - 1)]
            split = self._dataplane.split_of(record.model)
            if split is None or (split.baseline, split.canary) != (record.baseline, record.version):
                if not self._ready(record):
                    continue
                split = RolloutSplit(record.model, record.baseline, record.version)
                split.enter_step(step.share, step.shadow)
                self._dataplane.start_split(split)
            elif self._steps.get(record.model) != (record.rollout_id, record.step):
                split.enter_step(step.share, step.shadow)
            self._steps[record.model] = (record.rollout_id, record.step)

    def _ready(self, record: RolloutRecord) -> bool:
        for version in (record.baseline, record.version):
            serving = self._dataplane.serving(ModelId(record.model, version))
            if serving is None or not serving.ready_replicas:
                return False
        return True

    # -- peer requests ------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Each version's cumulative load counters (`LoadReading` fields, in order)."""
        versions = [
            [model_id.name, model_id.version, *astuple(serving.load.reading())]
            for model_id, serving in self._dataplane.servings()
        ]
        return {"pid": os.getpid(), "versions": versions}

    def rollout_windows(self, request: dict[str, Any]) -> dict[str, Any]:
        """The model's split's windows now ({} without a split), reset first when the
        control process's `epoch` is not the one last asked for."""
        model = str(request["model"])
        split = self._dataplane.split_of(model)
        applied = self._steps.get(model)
        if split is None or applied is None:
            return {}
        if split.epoch != int(request["epoch"]):
            split.reset_windows()
            split.epoch = int(request["epoch"])
        return {
            "rollout_id": applied[0], "step": applied[1], "retried": split.retried,
            "baseline": split.baseline_window.to_dict(), "canary": split.canary_window.to_dict(),
        }  # fmt: skip

    async def drain(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send the replica nothing new and answer once its batches in flight are back
        (bounded by `timeout_s`); its queue first, while it is the last replica."""
        model_id = ModelId(str(request["model"]), str(request["version"]))
        replica, timeout_s = int(request["replica"]), float(request["timeout_s"])
        serving = self._dataplane.serving(model_id)
        if serving is None or replica not in serving.replicas:
            return {}
        deadline = time.monotonic() + timeout_s
        for _ in range(math.ceil(timeout_s / QUEUE_POLL_S)):  # bounded: a stuck queue drains
            if not _last_with_queue(serving, replica) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(QUEUE_POLL_S)
        await serving.drain(replica, max(0.0, deadline - time.monotonic()))
        return {}

    # -- cold starts ----------------------------------------------------------------------

    async def forward_cold_starts(self) -> None:
        """Hand every cold start to the control process at once, until cancelled."""
        cold_starts = self._dataplane.cold_starts
        pending: set[ModelId] = set()
        while True:
            if not pending:
                await cold_starts.wait()
            pending |= cold_starts.take()
            versions = sorted([m.name, m.version] for m in pending)
            with contextlib.suppress(PeerUnreachable):
                await ask_peer(self._control_peer, {"op": "wake", "versions": versions})
                pending.clear()
                continue
            await asyncio.sleep(WAKE_RETRY_S)  # the control process is restarting


def _last_with_queue(serving: ModelServing, replica: int) -> bool:
    """Whether queries wait and no other replica would take them."""
    others = [h for r, h in serving.replicas.items() if r != replica and h.accepting]
    return bool(len(serving.queue)) and not others
