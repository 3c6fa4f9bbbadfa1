"""The traffic signals of several frontends: windows merged (clipper.dataplane.rollout_split)
and load counters summed across a frontend's replacement (clipper.frontends.control_signals),
over real peer sockets."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from clipper.core.types import ModelId
from clipper.dataplane.cold_starts import ColdStarts
from clipper.dataplane.load import LoadReading
from clipper.dataplane.rollout_split import MAX_LATENCY_SAMPLES, Outcome, VersionWindow
from clipper.frontends.control_signals import ControlSignals
from clipper.frontends.peer import serve_peer
from clipper.rpc.fanout import frontend_peer_path


def window(latencies_s: list[float], errors: int = 0) -> VersionWindow:
    out = VersionWindow()
    for index, latency_s in enumerate(latencies_s):
        out.observe(Outcome.ERROR if index < errors else Outcome.ANSWERED, latency_s)
    out.reward(1.0)
    return out


def test_merged_windows_sum_their_counts_and_pool_their_latencies() -> None:
    fast = window([0.01] * 98, errors=2)
    slow = window([1.0] * 2)

    merged = VersionWindow.merged([fast.to_dict(), slow.to_dict()])

    assert (merged.queries, merged.errors, merged.defaults) == (100, 2, 2)
    assert (merged.rewarded, merged.mean_reward) == (2, 1.0)
    assert merged.quantile(0.5) == 0.01
    assert merged.quantile(0.99) == 1.0  # the whole traffic's p99, not a mean of p99s
    assert VersionWindow.merged([]).quantile(0.5) is None


def test_merged_reservoirs_keep_each_window_in_proportion() -> None:
    rng = random.Random(1)
    big = window([rng.uniform(0, 1) for _ in range(3 * MAX_LATENCY_SAMPLES)])
    small = window([5.0] * (MAX_LATENCY_SAMPLES // 3))

    merged = VersionWindow.merged([big.to_dict(), small.to_dict()])

    assert len(merged.latencies_s) <= MAX_LATENCY_SAMPLES
    share_small = merged.latencies_s.count(5.0) / len(merged.latencies_s)
    assert 0.08 < share_small < 0.12  # 1 in 10 of all latencies observed


async def test_loads_sum_the_frontends_and_survive_a_replacement(tmp_path: Path) -> None:
    replies: dict[int, dict[str, Any]] = {
        0: {"pid": 10, "versions": [["m", "1", 5, 0.5, 1, 2.0]]},
        1: {"pid": 11, "versions": [["m", "1", 3, 0.3, 0, 1.0]]},
    }
    servers = []
    for index in (0, 1):

        async def answer(request: dict[str, Any], index: int = index) -> dict[str, Any]:
            return replies[index]

        servers.append(await serve_peer(frontend_peer_path(tmp_path, index), answer))
    signals = ControlSignals(tmp_path, 2, ColdStarts())
    try:
        first = await signals.loads()
        replies[0] = {"pid": 12, "versions": [["m", "1", 2, 0.2, 0, 0.5]]}  # replaced
        replies[1] = {"pid": 11, "versions": [["m", "1", 4, 0.4, 0, 1.5]]}
        second = await signals.loads()
    finally:
        for server in servers:
            server.close()

    assert first[ModelId("m", "1")] == LoadReading(8, 0.8, 1, 3.0)
    reading = second[ModelId("m", "1")]
    assert (reading.queries, reading.expired) == (11, 1)  # 8, then 2 new and 1 more
    assert abs(reading.queue_delay_s - 1.1) < 1e-9
    assert abs(reading.busy_s - 4.0) < 1e-9


async def test_a_frontends_cold_start_reaches_the_control_process(tmp_path: Path) -> None:
    cold_starts = ColdStarts()
    signals = ControlSignals(tmp_path, 2, cold_starts)

    await signals.wake({"versions": [["m", "1"], ["n", "2"]]})

    assert cold_starts.take() == {ModelId("m", "1"), ModelId("n", "2")}
