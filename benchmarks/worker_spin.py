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


def run_pairs(
    setting: str, variants: dict[str, int], workload: str, rounds: int, duration_s: float
) -> dict[int, dict[str, list[Measurement]]]:
    """One server per variant (`setting`, an environment variable, set to its value), all
    at once, with the workload's model and the cache off; the runs at c=1 and c=32."""
    make_model, body = WORKLOADS[workload]
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, value in variants.items():
            server = stack.enter_context(bench_server({setting: str(value)}))
            server.deploy("bench", make_model())
            server.admin("set_cache", {"app_name": "bench", "enabled": False})
            servers[name] = server
        return {c: measure_pairs(servers, body, c, rounds, duration_s) for c in (1, 32)}


def spin_arguments(description: str | None, rounds: int) -> argparse.Namespace:
    """The command line both spin benchmarks take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spin-us", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="noop")
    return parser.parse_args()


def comparison_rows(by_concurrency: dict[int, dict[str, list[Measurement]]]) -> list[list[str]]:
    """Table rows: each variant's medians, and the medians of its ratios to the first
    variant's (the one that sleeps) run of the same round (requests per second, p99)."""
    rows = []
    for concurrency, runs in by_concurrency.items():
        baseline = next(iter(runs.values()))
        for name, measured in runs.items():
            pairs = list(zip(measured, baseline, strict=True))
            speed = statistics.median(m.requests_per_s / b.requests_per_s for m, b in pairs)
            rows.append([
                name, str(concurrency),
                f"{statistics.median(m.requests_per_s for m in measured):,.0f}",
                f"{speed:.2f}x",
                f"{statistics.median(m.p50_ms for m in measured):.3f}",
                f"{statistics.median(m.p99_ms for m in measured):.3f}",
                f"{statistics.median(m.p99_ms / b.p99_ms for m, b in pairs):.2f}x",
            ])  # fmt: skip
    return rows


COMPARISON_HEADER = ["req/s", "req/s vs sleeping", "p50 ms", "p99 ms", "p99 vs sleeping"]


def compare_spin(
    description: str | None, setting: str, label: str, names: tuple[str, str], rounds: int
) -> None:
    """The command line of a spin benchmark: `setting` 0 against the spin asked, printed.
    `names`: the variants' names in the table (the second formats the spin in us)."""
    args = spin_arguments(description, rounds)
    variants = {names[0]: 0, names[1].format(args.spin_us): args.spin_us}
    runs = run_pairs(setting, variants, args.workload, args.rounds, args.duration)
    print(f"workload {args.workload}, {args.rounds} rounds of {args.duration:g} s")
    print_table([label, "concurrency", *COMPARISON_HEADER], comparison_rows(runs))


def main() -> None:
    names = ("sleep at once (0 us)", "spin {} us")
    compare_spin(__doc__, "CLIPPER_WORKER_SPIN_US", "worker", names, rounds=4)


if __name__ == "__main__":
    main()
