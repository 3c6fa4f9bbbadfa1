"""The control process's side of the query traffic's signals with several frontends
(`frontend_signals.py` is the frontends' side), over their peer sockets.

- `loads()`: every version's load counters summed over the frontends, for the autoscaler.
  A frontend's counters start at 0 when it is replaced (a new pid), so the sum is kept
  as a running total of each frontend's increments: it only grows, and what a lost
  frontend counted before it died stays counted. A frontend that does not answer in
  `ASK_TIMEOUT_S` adds its increments at the next reading.
- `collect_windows(record, split)`: the rollout's windows merged over the frontends (counts
  summed, latencies pooled: quantiles of the whole traffic, never averages of quantiles),
  put in the control process's split, which the rollout loop judges and `rollout status`
  shows. Only answers for the rollout's current step count.
- `wake`: the peer op by which a frontend hands over a cold start: the control process's
  `ColdStarts` takes it as if its own data plane had seen the query.
- `drain(replica)`: every frontend stops sending to the replica and answers once its
  batches in flight there are back; then the control process tells the worker to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from clipper.core.records import RolloutRecord
from clipper.core.types import ModelId, ReplicaId
from clipper.dataplane.cold_starts import ColdStarts
from clipper.dataplane.load import LoadReading
from clipper.dataplane.rollout_split import RolloutSplit, VersionWindow
from clipper.frontends.peer import PeerUnreachable, ask_peer
from clipper.rpc.fanout import frontend_peer_path

__all__ = ["ASK_TIMEOUT_S", "ControlSignals"]

ASK_TIMEOUT_S = 1.0
_Readings = dict[ModelId, LoadReading]


class ControlSignals:
    """The signals of frontends 0..count-1 of the server whose state is `state_dir`."""

    def __init__(self, state_dir: Path, count: int, cold_starts: ColdStarts) -> None:
        self._paths = [frontend_peer_path(state_dir, index) for index in range(count)]
        self._cold_starts = cold_starts
        self._last: dict[int, tuple[int, _Readings]] = {}  # index -> (pid, its readings)
        self._totals: _Readings = {}

    async def _ask_each(
        self, request: dict[str, Any], timeout_s: float = ASK_TIMEOUT_S
    ) -> list[dict[str, Any] | None]:
        """Each frontend's answer to `request`, by index (None: it did not answer)."""

        async def one(path: Path) -> dict[str, Any] | None:
            with contextlib.suppress(PeerUnreachable):
                return await ask_peer(path, request, timeout_s=timeout_s)
            return None

        return list(await asyncio.gather(*(one(path) for path in self._paths)))

    # -- the autoscaler's load ------------------------------------------------------------

    async def loads(self) -> _Readings:
        """Each version's load counters, summed over every frontend (see the docstring)."""
        for index, reply in enumerate(await self._ask_each({"op": "load"})):
            if reply is None:
                continue
            readings = {
                ModelId(str(row[0]), str(row[1])): LoadReading(*row[2:])
                for row in reply["versions"]
            }
            pid = int(reply["pid"])
            last_pid, before = self._last.get(index, (pid, {}))
            if last_pid != pid:
                before = {}  # a new process: its counters started at 0
            for model_id, reading in readings.items():
                self._add(model_id, reading, before.get(model_id))
            self._last[index] = (pid, readings)
        return dict(self._totals)

    def _add(self, model_id: ModelId, now: LoadReading, before: LoadReading | None) -> None:
        if before is None or now.queries < before.queries or now.expired < before.expired:
            before = LoadReading()
        total = self._totals.get(model_id, LoadReading())
        self._totals[model_id] = LoadReading(
            total.queries + now.queries - before.queries,
            total.queue_delay_s + now.queue_delay_s - before.queue_delay_s,
            total.expired + now.expired - before.expired,
            total.busy_s + now.busy_s - before.busy_s,
        )

    # -- rollouts -------------------------------------------------------------------------

    async def collect_windows(self, record: RolloutRecord, split: RolloutSplit) -> None:
        """Put the frontends' windows of the rollout's step, merged, in `split`."""
        request = {"op": "rollout_windows", "model": record.model, "epoch": split.epoch}
        replies = [
            reply
            for reply in await self._ask_each(request)
            if reply is not None
            and reply.get("rollout_id") == record.rollout_id
            and reply.get("step") == record.step
        ]
        split.baseline_window = VersionWindow.merged(reply["baseline"] for reply in replies)
        split.canary_window = VersionWindow.merged(reply["canary"] for reply in replies)
        split.retried = sum(int(reply["retried"]) for reply in replies)

    # -- cold starts and drains ---------------------------------------------------------

    async def wake(self, request: dict[str, Any]) -> dict[str, Any]:
        """A frontend's cold starts (the peer op `wake`)."""
        for name, version in request["versions"]:
            self._cold_starts.ask(ModelId(str(name), str(version)))
        return {}

    async def drain(self, replica_id: ReplicaId, timeout_s: float) -> None:
        """Until no frontend has a batch in flight on the replica (bounded by `timeout_s`)."""
        model = replica_id.model
        request = {"op": "drain", "model": model.name, "version": model.version,
                   "replica": replica_id.replica, "timeout_s": timeout_s}  # fmt: skip
        await self._ask_each(request, timeout_s + ASK_TIMEOUT_S)
