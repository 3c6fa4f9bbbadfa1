"""What tracing costs: the same no-op query with tracing off and at 0%, 1% and 100% sampling.

Run: `.venv/bin/python -m benchmarks.tracing [--duration 5] [--rounds 3] [--concurrency 32]`.
Starts four servers at once, each with a no-op `doubles` model and the prediction cache off
(the body is fixed): one without `otel_endpoint` (tracing off, OpenTelemetry not imported),
three exporting to an OTLP/HTTP sink in this process (it answers 200 and counts the bytes)
at `otel_sample_ratio` 0, 0.01 and 1. Each round measures every server in turn with the same
closed-loop load (wrk, else benchmarks.loadgen): this VM's speed drifts within minutes, so
the ratio to the round's tracing-off figure is what to read. It prints per server the
median requests/s, p50 and p99 over the rounds and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks.harness import BenchServer, bench_server
from benchmarks.table import print_table
from benchmarks.wrk import Measurement, measure

__all__ = ["main"]

BODY = b'{"input": [1.0, 2.0, 3.0]}'
CONFIGS = {"off": None, "0%": "0", "1%": "0.01", "100%": "1"}


def noop(xs: list[Any]) -> list[float]:
    return [0.0 for _ in xs]


class _Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        _Sink.received += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that takes every export; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _env(endpoint: str, ratio: str | None) -> dict[str, str]:
    if ratio is None:
        return {}
    return {"CLIPPER_OTEL_ENDPOINT": endpoint, "CLIPPER_OTEL_SAMPLE_RATIO": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    results: dict[str, list[Measurement]] = {name: [] for name in CONFIGS}
    with otlp_sink() as endpoint, contextlib.ExitStack() as stack:
        servers: dict[str, BenchServer] = {}
        for name, ratio in CONFIGS.items():
            server = stack.enter_context(bench_server(_env(endpoint, ratio)))
            server.deploy("noop", noop, slo_us=1_000_000)
            server.admin("set_cache", {"app_name": "noop", "enabled": False})
            servers[name] = server
        for _ in range(args.rounds):
            for name, server in servers.items():
                results[name].append(
                    measure(
                        server.query_port, "/noop/predict", BODY, args.concurrency, args.duration
                    )
                )
    rows = []
    for name, runs in results.items():
        ratios = [run.requests_per_s / off.requests_per_s
                  for run, off in zip(runs, results["off"], strict=True)]  # fmt: skip
        rows.append([
            name,
            f"{statistics.median(r.requests_per_s for r in runs):.0f}",
            f"{statistics.median(r.p50_ms for r in runs):.2f}",
            f"{statistics.median(r.p99_ms for r in runs):.2f}",
            f"{statistics.median(ratios):.3f}",
            " ".join(f"{ratio:.2f}" for ratio in ratios),
        ])  # fmt: skip
    print(f"\n## Tracing: {args.rounds} rounds of {args.duration:g} s at c={args.concurrency} "
          f"({results['off'][0].tool}); OTLP bytes exported: {_Sink.received}\n")  # fmt: skip
    print_table(["tracing", "req/s (median)", "p50 ms", "p99 ms", "vs off (median)",
                 "per round"], rows)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
