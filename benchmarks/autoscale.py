"""Autoscaling against fixed replica counts: one traffic trace replayed open-loop (issue 22).

Run: `.venv/bin/python -m benchmarks.autoscale [--low-rate 25] [--scale 1.0]`; the full
run (`--scale 1`) takes about 13 minutes (four configurations of 3 minutes each, and their
start-ups), plus Ray Serve's environment the first time (installed by the peers
benchmark's machinery into ~/.cache/clipper-peers/rayserve; `--no-ray-serve` leaves it out).
The model waits 20 ms per batch of at most 4 (time, not CPU, as a GPU- or network-bound
model does, so replicas add capacity on 2 cores) behind an app with a 100 ms SLO: one
replica answers about 200 queries/s in time. The trace: `--low-rate` queries/s for 30 s, ten
times that for 60 s, the low rate again for 60 s, then 30 s idle (durations times `--scale`).
Requests leave at the trace's times whatever the answers (open loop, as real traffic
arrives), each with a new input (no cache hits). The same trace runs against, one after the
other on a fresh server each: a fixed count sized for the low rate, a fixed count sized
for the peak, autoscaling between 1 and 4 replicas (short windows; `min_replicas` 0
with `--to-zero`), and Ray Serve's autoscaler on the same model (`@serve.batch` of 4, 20 ms
a batch) with the same bounds and windows and `target_ongoing_requests`
`--ray-target-ongoing` (4 by default: a batch running and one waiting per replica, about
Clipper's target of 20% of the SLO spent waiting). Ray Serve has no default answer: a
query it answers within the SLO counts as in time. It prints, per configuration and 10 s
window, the rate sent, the replicas, p50/p99 and the share answered by the model within the
SLO; then a summary: that share over the whole trace and after the step, the seconds after
the step until a window is back above 99%, the replica-seconds used against an oracle's (at
each moment the replicas the rate needed, from one replica's measured capacity), and the
failed requests.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.autoscale_rayserve import ray_serve_autoscaled, serve_autoscaling
from benchmarks.harness import BenchServer, bench_server
from benchmarks.table import print_table

__all__ = ["main"]

SLO_US = 100_000
BATCH = 4
BATCH_S = 0.02
CAPACITY_PER_REPLICA = BATCH / BATCH_S * 0.8  # queries/s one replica answers well in time
WINDOW_S = 10.0
AUTOSCALING = {
    "min_replicas": 1, "max_replicas": 4, "upscale_window_s": 2.0,
    "downscale_delay_s": 15.0, "scale_to_zero_after_s": 20.0,
}  # fmt: skip


def slow_batch(xs: list[Any]) -> list[float]:
    """20 ms per batch, whatever its size."""
    time.sleep(BATCH_S)
    return [float(sum(x)) for x in xs]


@dataclass(frozen=True, slots=True)
class Phase:
    seconds: float
    rate: float  # queries per second


@dataclass
class Run:
    """What one configuration saw."""

    name: str
    sent: list[tuple[float, float, bool, bool]] = field(default_factory=list)
    """(send time, latency s, answered by the model within the SLO, failed) per request."""
    replicas: list[tuple[float, int]] = field(default_factory=list)


def trace(low_rate: float, scale: float) -> list[Phase]:
    return [Phase(30 * scale, low_rate), Phase(60 * scale, 10 * low_rate),
            Phase(60 * scale, low_rate), Phase(30 * scale, 0.0)]  # fmt: skip


def send_times(phases: list[Phase]) -> list[float]:
    """Evenly spaced send times (seconds from the start) at each phase's rate."""
    times: list[float] = []
    start = 0.0
    for phase in phases:
        if phase.rate > 0:
            step = 1.0 / phase.rate
            times.extend(start + step * i for i in range(int(phase.seconds * phase.rate)))
        start += phase.seconds
    return times


InTime = Callable[[httpx.Response], bool]
"""Whether a reply (received within the SLO) is the model's answer."""


def clipper_in_time(reply: httpx.Response) -> bool:
    return reply.status_code == 200 and not reply.json()["default"]


def serve_in_time(reply: httpx.Response) -> bool:
    return reply.status_code == 200 and "output" in reply.json()


async def replay(url: str, phases: list[Phase], run: Run, in_time: InTime) -> float:
    """Send the trace to `url` open-loop; the monotonic time it started."""
    inputs = itertools.count()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        started = time.monotonic()

        async def one(at: float) -> None:
            sent = time.monotonic()
            try:
                reply = await client.post(url, json={"input": [float(next(inputs))]})
                latency = time.monotonic() - sent
                answered = in_time(reply) and latency <= SLO_US / 1e6
                run.sent.append((at, latency, answered, False))
            except (httpx.HTTPError, ValueError, KeyError):
                run.sent.append((at, time.monotonic() - sent, False, True))

        tasks = []
        for at in send_times(phases):
            delay = started + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        await asyncio.gather(*tasks)
        rest = started + sum(phase.seconds for phase in phases) - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)
        return started


async def watch_clipper(server: BenchServer, run: Run, total_s: float) -> None:
    """Sample the ready replicas once a second for `total_s`."""
    started = time.monotonic()
    base_url = f"http://127.0.0.1:{server.admin_port}"
    async with httpx.AsyncClient(base_url=base_url, headers=server.admin_headers,
                                 timeout=10) as admin:  # fmt: skip
        while time.monotonic() - started < total_s:
            reply = await admin.post("/admin/get_all_containers", json={"verbose": True})
            ready = sum(1 for r in reply.json() if r.get("state") == "ready")
            run.replicas.append((time.monotonic() - started, ready))
            await asyncio.sleep(1.0)


async def replay_clipper(server: BenchServer, phases: list[Phase], run: Run) -> None:
    url = f"http://127.0.0.1:{server.query_port}/bench/predict"
    total_s = sum(phase.seconds for phase in phases)
    watcher = asyncio.create_task(watch_clipper(server, run, total_s))
    await replay(url, phases, run, clipper_in_time)
    await watcher


def run_config(name: str, phases: list[Phase], replicas: int, autoscaling: Any) -> Run:
    env = {"CLIPPER_AUTOSCALER_INTERVAL_S": "0.5", "CLIPPER_DASHBOARD_SAMPLE_INTERVAL_S": "60"}
    with bench_server(env) as server:
        server.deploy("bench", slow_batch, batch_size=BATCH, slo_us=SLO_US, replicas=replicas)
        if autoscaling is not None:
            server.admin("set_autoscaling", {"model_name": "bench", "autoscaling": autoscaling})
        run = Run(name)
        asyncio.run(replay_clipper(server, phases, run))
        return run


def run_ray_serve(phases: list[Phase], autoscaling: dict[str, Any], target: float) -> Run:
    """The trace against Ray Serve's autoscaler with Clipper's bounds and windows."""
    total_s = sum(phase.seconds for phase in phases)
    run = Run(f"Ray Serve (target {target:g})")
    config = serve_autoscaling(autoscaling, target)
    with (
        tempfile.TemporaryDirectory(
            prefix="autoscale-serve-", ignore_cleanup_errors=True
        ) as scratch,
        ray_serve_autoscaled(config, Path(scratch)) as serve,
    ):
        url = f"http://127.0.0.1:{serve.port}/"
        started = asyncio.run(replay(url, phases, run, serve_in_time))
        run.replicas = serve.replicas(started, started + total_s)
    return run


def oracle_replica_s(phases: list[Phase], minimum: int) -> float:
    return sum(
        phase.seconds * max(minimum, math.ceil(phase.rate / CAPACITY_PER_REPLICA))
        for phase in phases
    )


def replica_seconds(run: Run) -> float:
    """The ready replicas, integrated over the watch's samples (one a second)."""
    samples = run.replicas
    return sum((b[0] - a[0]) * a[1] for a, b in itertools.pairwise(samples))


def window_rows(run: Run, total_s: float) -> list[list[str]]:
    rows = []
    for start in range(0, math.ceil(total_s), int(WINDOW_S)):
        sent = [s for s in run.sent if start <= s[0] < start + WINDOW_S]
        counts = [n for t, n in run.replicas if start <= t < start + WINDOW_S]
        latencies = sorted(s[1] for s in sent)
        p50 = statistics.median(latencies) * 1e3 if latencies else 0.0
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3 if sent else 0
        share = sum(s[2] for s in sent) / len(sent) if sent else 1.0
        rows.append([
            run.name, f"{start}-{start + int(WINDOW_S)}", f"{len(sent) / WINDOW_S:.0f}",
            f"{max(counts, default=0)}", f"{p50:.0f}", f"{p99:.0f}", f"{share:.1%}",
        ])  # fmt: skip
    return rows


def recovery_s(run: Run, step_at: float, step_end: float) -> str:
    """Seconds after the step until a 5 s window of it is back above 99% in time."""
    for start in itertools.count(step_at, 1.0):
        if start + 5 > step_end:
            return "never"
        sent = [s for s in run.sent if start <= s[0] < start + 5]
        if sent and sum(s[2] for s in sent) / len(sent) > 0.99:
            return f"{start - step_at:.0f}"
    return "never"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--low-rate", type=float, default=25.0, help="queries/s outside the step")
    parser.add_argument("--scale", type=float, default=1.0, help="phase durations times this")
    parser.add_argument("--to-zero", action="store_true", help="autoscale with min_replicas 0")
    parser.add_argument("--ray-target-ongoing", type=float, default=4.0,
                        help="Ray Serve's target_ongoing_requests")  # fmt: skip
    parser.add_argument("--no-ray-serve", action="store_true", help="leave Ray Serve out")
    args = parser.parse_args()
    phases = trace(args.low_rate, args.scale)
    total_s = sum(phase.seconds for phase in phases)
    peak = max(phase.rate for phase in phases)
    low_count = max(1, math.ceil(args.low_rate / CAPACITY_PER_REPLICA))
    peak_count = math.ceil(peak / CAPACITY_PER_REPLICA)
    autoscaling = {**AUTOSCALING, "min_replicas": 0 if args.to_zero else 1}
    runs = [
        run_config(f"fixed {low_count} (low)", phases, low_count, None),
        run_config(f"fixed {peak_count} (peak)", phases, peak_count, None),
        run_config("autoscaled", phases, 1, autoscaling),
    ]
    if not args.no_ray_serve:
        runs.append(run_ray_serve(phases, autoscaling, args.ray_target_ongoing))
    print(f"\n## One trace, open loop: {args.low_rate:g}/s, {peak:g}/s for "
          f"{phases[1].seconds:g} s, {args.low_rate:g}/s, idle\n")  # fmt: skip
    rows = [row for run in runs for row in window_rows(run, total_s)]
    print_table(["config", "window s", "rate/s", "replicas", "p50 ms", "p99 ms", "in SLO"], rows)
    step_at, step_end = phases[0].seconds, phases[0].seconds + phases[1].seconds
    oracle = oracle_replica_s(phases, 0 if args.to_zero else 1)
    summary = []
    for run in runs:
        after = [s for s in run.sent if s[0] >= step_at]
        summary.append([
            run.name,
            f"{sum(s[2] for s in run.sent) / max(1, len(run.sent)):.1%}",
            f"{sum(s[2] for s in after) / max(1, len(after)):.1%}",
            recovery_s(run, step_at, step_end),
            f"{replica_seconds(run):.0f}",
            f"{replica_seconds(run) / oracle:.2f}",
            f"{sum(s[3] for s in run.sent)}",
        ])  # fmt: skip
    print()
    print_table(["config", "in SLO (all)", "in SLO (from the step)", "s to >99% after the step",
                 "replica-s", "vs oracle", "failed"], summary)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
