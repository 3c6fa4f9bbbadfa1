"""The query API's HTTP server: uvicorn against Clipper's lean HTTP/1.1 server, side by side.

Run: `.venv/bin/python -m benchmarks.frontend [--duration 8]`. One server per HTTP server
choice (`CLIPPER_QUERY_HTTP`), the same no-op model of 10 floats, driven by wrk (or the
Python load generator when wrk is missing) at concurrency 1 and 32, with the prediction
cache on (the frontend alone) and off (through the worker process).
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from benchmarks.harness import bench_server
from benchmarks.table import print_table
from benchmarks.wrk import Measurement, measure

BODY = orjson.dumps({"input": [float(i) for i in range(10)]})


def noop(inputs: list[Any]) -> list[Any]:
    """Returns its inputs."""
    return [x.tolist() for x in inputs]


def measure_server(http: str, duration_s: float) -> dict[tuple[str, int], Measurement]:
    results = {}
    with bench_server({"CLIPPER_QUERY_HTTP": http}) as server:
        server.deploy("noop", noop)
        for cache in ("on", "off"):
            server.admin("set_cache", {"app_name": "noop", "enabled": cache == "on"})
            for concurrency in (1, 32):
                results[(cache, concurrency)] = measure(
                    server.query_port, "/noop/predict", BODY, concurrency, duration_s
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    args = parser.parse_args()
    by_server = {http: measure_server(http, args.duration) for http in ("uvicorn", "clipper")}
    rows = []
    for cache, concurrency in by_server["uvicorn"]:
        base = by_server["uvicorn"][(cache, concurrency)]
        lean = by_server["clipper"][(cache, concurrency)]
        path = "frontend only (cache hit)" if cache == "on" else "through the worker"
        rows.append([
            path, str(concurrency),
            f"{base.requests_per_s:,.0f}", f"{lean.requests_per_s:,.0f}",
            f"{lean.requests_per_s / max(base.requests_per_s, 1e-9):.2f}",
            f"{base.p50_ms:.3f} / {base.p99_ms:.3f}", f"{lean.p50_ms:.3f} / {lean.p99_ms:.3f}",
        ])  # fmt: skip
    print(f"\n## Query API HTTP server ({args.duration:g} s runs, {base.tool})\n")
    print_table(
        ["path", "concurrency", "uvicorn req/s", "lean req/s", "lean/uvicorn",
         "uvicorn p50/p99 ms", "lean p50/p99 ms"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
