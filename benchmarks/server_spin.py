"""A server whose event loop polls between close reads against one that sleeps at once.

Run: `.venv/bin/python -m benchmarks.server_spin [--spin-us 300] [--rounds 8]
[--workload noop|sklearn]`. Two servers run at once, each with the same model and workers
that spin as by default, one with `CLIPPER_SERVER_SPIN_US=0` and one with the spin time
given; wrk drives them in turn (alternating which goes first each round, so a drift of
this machine's speed hits both alike), at concurrency 1 and 32. Medians of the rounds,
and the median ratio of each round's pair (throughput, and p99 latency).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

from benchmarks.harness import bench_server
from benchmarks.table import print_table
from benchmarks.worker_spin import WORKLOADS, measure_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spin-us", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="noop")
    args = parser.parse_args()
    make_model, body = WORKLOADS[args.workload]
    variants = {"sleeps at once (0 us)": 0, f"polls {args.spin_us} us": args.spin_us}
    rows = []
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, spin_us in variants.items():
            server = stack.enter_context(bench_server({"CLIPPER_SERVER_SPIN_US": str(spin_us)}))
            server.deploy("bench", make_model())
            server.admin("set_cache", {"app_name": "bench", "enabled": False})
            servers[name] = server
        for concurrency in (1, 32):
            runs = measure_pairs(servers, body, concurrency, args.rounds, args.duration)
            baseline = runs[next(iter(variants))]
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
    header = ["server loop", "concurrency", "req/s", "req/s vs sleeping", "p50 ms", "p99 ms",
              "p99 vs sleeping"]  # fmt: skip
    print(f"workload {args.workload}, {args.rounds} rounds of {args.duration:g} s")
    print_table(header, rows)


if __name__ == "__main__":
    main()
