"""Workers that spin before sleeping against workers that sleep at once, side by side.

Run: `.venv/bin/python -m benchmarks.worker_spin [--spin-us 300] [--rounds 4]
[--workload noop|sklearn]`. Two servers run at once, each with the same model (the no-op
of 10 floats, or the peers' scikit-learn LogisticRegression on 20 features, adaptive
batching; prediction cache off),
one with `CLIPPER_WORKER_SPIN_US=0` and one with the spin time given; wrk drives them in
turn (alternating which goes first each round, so a drift of this machine's speed hits
both alike), at concurrency 1 and 32. Medians of the rounds, and the ratio of each round's
pair.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.frontend import BODY, noop
from benchmarks.harness import BenchServer, bench_server
from benchmarks.peers.clipper import sklearn_closure
from benchmarks.peers.model import SKLEARN_ROW
from benchmarks.table import print_table
from benchmarks.wrk import Measurement, measure

PATH = "/bench/predict"
WORKLOADS: dict[str, tuple[Callable[[], Callable[[list[Any]], list[Any]]], bytes]] = {
    "noop": (lambda: noop, BODY),
    "sklearn": (sklearn_closure, orjson.dumps({"input": SKLEARN_ROW})),
}
"""Each workload: what makes its model (the sklearn one is trained here), and its body."""


def measure_pairs(
    servers: dict[str, BenchServer], body: bytes, concurrency: int, rounds: int, duration_s: float
) -> dict[str, list[Measurement]]:
    """`rounds` runs of each server, interleaved."""
    results: dict[str, list[Measurement]] = {name: [] for name in servers}
    names = list(servers)
    for server in servers.values():
        measure(server.query_port, PATH, body, concurrency, 1.0)  # warm-up
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            port = servers[name].query_port
            results[name].append(measure(port, PATH, body, concurrency, duration_s))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spin-us", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="noop")
    args = parser.parse_args()
    make_model, body = WORKLOADS[args.workload]
    variants = {"sleep at once (0 us)": 0, f"spin {args.spin_us} us": args.spin_us}
    rows = []
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, spin_us in variants.items():
            server = stack.enter_context(bench_server({"CLIPPER_WORKER_SPIN_US": str(spin_us)}))
            server.deploy("bench", make_model())
            server.admin("set_cache", {"app_name": "bench", "enabled": False})
            servers[name] = server
        for concurrency in (1, 32):
            runs = measure_pairs(servers, body, concurrency, args.rounds, args.duration)
            baseline = runs[next(iter(variants))]
            for name, measured in runs.items():
                ratios = [
                    m.requests_per_s / b.requests_per_s
                    for m, b in zip(measured, baseline, strict=True)
                ]
                rows.append([
                    name, str(concurrency),
                    f"{statistics.median(m.requests_per_s for m in measured):,.0f}",
                    f"{statistics.median(ratios):.2f}x",
                    f"{statistics.median(m.p50_ms for m in measured):.3f}",
                    f"{statistics.median(m.p99_ms for m in measured):.3f}",
                ])  # fmt: skip
    header = ["worker", "concurrency", "req/s", "vs sleeping", "p50 ms", "p99 ms"]
    print_table(header, rows)


if __name__ == "__main__":
    main()
