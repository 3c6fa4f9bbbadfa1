"""Several query frontends (issue 26): throughput and latency for 1, 2, 4 and 8 frontends.

Run: `.venv/bin/python -m benchmarks.frontends [--duration 5] [--frontends 1,2,4,8]
[--concurrency 1,32,256] [--models noop,sklearn] [--replicas 2]`. One server per frontend
count (`CLIPPER_FRONTENDS`), the same models deployed on each, with the prediction cache
off so every query goes through a worker: `noop` (10 floats back) and `sklearn` (a
LogisticRegression on 20 features, batched). Each cell is closed-loop load from wrk (or
the Python load generator where wrk is missing) on fresh keep-alive connections, which
SO_REUSEPORT spreads over the frontends. The load generator's own CPU is reported
(cores busy: its CPU seconds over the run's), so a table shows when the load generator,
not the server, is what saturates; `scaling` is the throughput over the same cell's with
one frontend (the issue's goal: at least 0.7 x N until the workers or the load generator
saturate). On a 2-core machine expect no gain: the frontends share the cores with the
workers and the load generator.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks.batching import make_sklearn_model
from benchmarks.harness import BenchServer, bench_server
from benchmarks.table import print_table
from benchmarks.wrk import Measurement, measure

BODIES = {
    "noop": orjson.dumps({"input": [float(i) for i in range(10)]}),
    "sklearn": orjson.dumps({"input": [float(i % 7) / 7 for i in range(20)]}),
}


def noop(inputs: list[Any]) -> list[Any]:
    """Returns its inputs."""
    return [x.tolist() for x in inputs]


@dataclass(frozen=True)
class Cell:
    """One measurement and the load generator's CPU during it."""

    measurement: Measurement
    loadgen_cores: float


def _cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_cell(server: BenchServer, app: str, concurrency: int, duration_s: float) -> Cell:
    started_cpu, started = _cpu_s(), time.monotonic()
    result = measure(server.query_port, f"/{app}/predict", BODIES[app], concurrency, duration_s)
    elapsed = time.monotonic() - started  # wrk's warm-up second included, in both
    return Cell(result, (_cpu_s() - started_cpu) / elapsed if elapsed else 0.0)


def _deploy(server: BenchServer, app: str, replicas: int) -> None:
    model: Callable[[list[Any]], list[Any]] = noop if app == "noop" else make_sklearn_model()
    server.deploy(app, model, slo_us=100_000, replicas=replicas)
    server.admin("set_cache", {"app_name": app, "enabled": False})


def measure_count(
    frontends: int, models: list[str], levels: list[int], replicas: int, duration_s: float
) -> dict[tuple[str, int], Cell]:
    cells = {}
    with bench_server({"CLIPPER_FRONTENDS": str(frontends)}) as server:
        for app in models:
            _deploy(server, app, replicas)
            for concurrency in levels:
                cells[(app, concurrency)] = measure_cell(server, app, concurrency, duration_s)
    return cells


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--frontends", default="1,2,4,8", help="frontend counts to compare")
    parser.add_argument("--concurrency", default="1,32,256", help="connections per cell")
    parser.add_argument("--models", default="noop,sklearn", help="noop, sklearn or both")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of each model")
    args = parser.parse_args()
    counts, levels = _numbers(args.frontends), _numbers(args.concurrency)
    models = [name for name in args.models.split(",") if name]
    results = {n: measure_count(n, models, levels, args.replicas, args.duration) for n in counts}
    rows = []
    for n, cells in results.items():
        for (app, concurrency), cell in cells.items():
            base = results[counts[0]][(app, concurrency)].measurement.requests_per_s
            m = cell.measurement
            rows.append([
                app, str(concurrency), str(n), f"{m.requests_per_s:,.0f}",
                f"{m.requests_per_s / base:.2f}" if base else "-", f"{m.p50_ms:.2f}",
                f"{m.p99_ms:.2f}", f"{cell.loadgen_cores:.2f}", m.tool,
            ])  # fmt: skip
    print_table(
        ["model", "c", "frontends", "req/s", "scaling", "p50 ms", "p99 ms",
         "load-gen cores", "tool"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
