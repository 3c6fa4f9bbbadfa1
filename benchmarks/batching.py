"""Adaptive batching against batch size 1, and the prediction cache's hit path.

Run: `.venv/bin/python -m benchmarks.batching [--duration 5]`. Starts one real server with
real worker processes, drives each workload with the same closed-loop load generator at
concurrency 1 and 64, and prints a table with the adaptive/off ratios.

Workloads:
  (a) fixed-cost: about 2 ms of CPU per call plus 20 us per input (busy loop, not sleep);
  (b) sklearn: a LogisticRegression on 20 features, one row per request.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import orjson

from benchmarks.harness import BenchServer, bench_server
from benchmarks.loadgen import LoadResult, run_load
from benchmarks.table import print_table

SLO_US = 50_000
CONCURRENCIES = (1, 64)


def fixed_cost_model(inputs: list[Any]) -> list[float]:
    """About 2 ms per call and 20 us per input, spent on the CPU."""
    stop = time.perf_counter() + 0.002 + 0.00002 * len(inputs)
    while time.perf_counter() < stop:
        pass
    return [float(x[0]) for x in inputs]


def make_sklearn_model() -> Any:
    """A LogisticRegression on 20 features trained now, as a batch predict function."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    features, labels = make_classification(n_samples=2000, n_features=20, random_state=0)
    model = LogisticRegression(max_iter=500).fit(features, labels)

    def predict(inputs: list[Any]) -> list[int]:
        return [int(label) for label in model.predict(np.stack(inputs))]

    return predict


def slow_model(inputs: list[Any]) -> list[float]:
    """Non-trivial compute for the cache benchmark: about 5 ms per call."""
    stop = time.perf_counter() + 0.005
    while time.perf_counter() < stop:
        pass
    return [float(np.sum(x)) for x in inputs]


def _drive(
    server: BenchServer, app: str, body: bytes, concurrency: int, duration_s: float
) -> LoadResult:
    return run_load(
        "127.0.0.1", server.query_port, f"/{app}/predict", body, concurrency, duration_s
    )


def _row(workload: str, mode: str, result: LoadResult) -> list[str]:
    return [
        workload, mode, str(result.concurrency), f"{result.throughput:,.0f}",
        f"{result.goodput:,.0f}",
        f"{result.median_ms:.2f}", f"{result.percentile_ms(0.99):.2f}",
        f"{result.defaults}", f"{result.errors}",
    ]  # fmt: skip


def run_batching(server: BenchServer, duration_s: float) -> None:
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    row20 = orjson.dumps({"input": np.random.default_rng(0).normal(size=20).tolist()})
    workloads = {"fixed-cost": fixed_cost_model, "sklearn": make_sklearn_model()}
    for workload, func in workloads.items():
        for mode, batch_size in (("off", 1), ("adaptive", -1)):
            server.deploy(f"{workload}-{mode}", func, batch_size=batch_size, slo_us=SLO_US)
        for concurrency in CONCURRENCIES:
            results = {}
            for mode in ("off", "adaptive"):
                # The cache would answer repeated inputs; turn it off to measure the models.
                server.admin("set_cache", {"app_name": f"{workload}-{mode}", "enabled": False})
                results[mode] = _drive(server, f"{workload}-{mode}", row20, concurrency, duration_s)
                rows.append(_row(workload, mode, results[mode]))
            adaptive, off = results["adaptive"], results["off"]
            ratio = adaptive.throughput / max(off.throughput, 1e-9)
            good_ratio = adaptive.goodput / max(off.goodput, 1e-9)
            ratios.append([workload, str(concurrency), f"{ratio:.1f}x", f"{good_ratio:.1f}x",
                           f"{adaptive.percentile_ms(0.99):.2f}"])  # fmt: skip
    print(f"\n## Batching (SLO {SLO_US / 1000:.0f} ms, {duration_s:g} s runs)\n")
    print_table(["workload", "batching", "concurrency", "req/s", "model answers/s",
                  "p50 ms", "p99 ms",
                  "defaults", "errors"], rows)  # fmt: skip
    print("\n## Adaptive / off\n")
    print_table(["workload", "concurrency", "req/s ratio", "model answers/s ratio",
                  "adaptive p99 ms"], ratios)  # fmt: skip
    print("\n(req/s counts default answers too; model answers/s counts only answers a model gave.)")


def run_cache(server: BenchServer, duration_s: float) -> None:
    server.deploy("cache-miss", slow_model, slo_us=1_000_000)
    server.deploy("cache-hit", slow_model, slo_us=1_000_000)
    server.admin("set_cache", {"app_name": "cache-miss", "enabled": False})
    body = orjson.dumps({"input": [1.0] * 20})
    miss = _drive(server, "cache-miss", body, 1, duration_s)
    hit = _drive(server, "cache-hit", body, 1, duration_s)
    print(f"\n## Prediction cache (model of ~5 ms, concurrency 1, {duration_s:g} s runs)\n")
    rows = [
        [name, f"{result.throughput:,.0f}", f"{result.median_ms:.3f}",
         f"{result.percentile_ms(0.99):.3f}"]
        for name, result in (("miss (cache off)", miss), ("hit", hit))
    ]  # fmt: skip
    print_table(["path", "req/s", "p50 ms", "p99 ms"], rows)
    print(f"\nhit/miss median latency: {hit.median_ms / miss.median_ms:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    args = parser.parse_args()
    with bench_server() as server:
        run_batching(server, args.duration)
        run_cache(server, args.duration)


if __name__ == "__main__":
    main()
