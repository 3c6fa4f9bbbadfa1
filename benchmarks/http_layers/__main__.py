"""The HTTP layer alone, side by side: which server the query API should sit on.

Run: `.venv/bin/python -m benchmarks.http_layers [--duration 8]` (granian comes with the
`bench` extra). Each candidate serves the same minimal no-op app in its own process (see
`servers.py`: parse `{"input": x}` with orjson, answer `{"output": x}`), one at a time,
driven by wrk on the same 2 cores at concurrency 1 and 32; each run twice, medians shown,
with throughput relative to asyncio + httptools, the layer Clipper's query port is built on
(`clipper.http.http11`).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from benchmarks.harness import _free_port, stop_process
from benchmarks.http_layers.servers import KINDS
from benchmarks.peers.system import service_dir
from benchmarks.table import print_table
from benchmarks.wrk import Measurement, measure

BODY = orjson.dumps({"input": [float(i) for i in range(10)]})
BASELINE = "asyncio + httptools"
CANDIDATES = [BASELINE, *KINDS]
BARE_SERVER = Path(__file__).parent.parent / "peers" / "services" / "bare_server.py"
RUNS = 2


def command(kind: str, port: int, scratch: Path) -> list[str]:
    """How to start `kind` on `port` (the baseline: the peers' bare server, in `scratch`)."""
    if kind != BASELINE:
        return [sys.executable, "-m", "benchmarks.http_layers.servers", kind, str(port)]
    shutil.copy(BARE_SERVER, service_dir(scratch) / BARE_SERVER.name)
    return [sys.executable, str(scratch / BARE_SERVER.name), str(port), "noop"]


@contextlib.contextmanager
def running(kind: str) -> Iterator[int]:
    """One candidate's server on a free port, stopped (by its pid) on exit."""
    port = _free_port()
    scratch = Path(tempfile.mkdtemp(prefix="clipper-http-layers-"))
    process = subprocess.Popen(
        command(kind, port, scratch), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        yield port
    finally:
        stop_process(process, signal.SIGINT, 10)
        shutil.rmtree(scratch, ignore_errors=True)


def median(runs: list[Measurement]) -> tuple[float, float, float]:
    return (
        statistics.median(run.requests_per_s for run in runs),
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    args = parser.parse_args()
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    tool = "wrk"
    for kind in CANDIDATES:
        with running(kind) as port:
            measure(port, "/predict", BODY, 32, 2)  # warm-up
            for concurrency in (1, 32):
                runs = [measure(port, "/predict", BODY, concurrency, args.duration)
                        for _ in range(RUNS)]  # fmt: skip
                tool = runs[0].tool
                results[(kind, concurrency)] = median(runs)
    rows = []
    for kind in CANDIDATES:
        row = [kind]
        for concurrency in (1, 32):
            rate, p50, p99 = results[(kind, concurrency)]
            ratio = rate / results[(BASELINE, concurrency)][0]
            row += [f"{rate:,.0f} ({ratio:.2f}x)", f"{p50:.3f} / {p99:.3f}"]
        rows.append(row)
    print(
        f"\n## HTTP layers alone, no-op app ({args.duration:g} s runs, median of {RUNS}, {tool})\n"
    )
    print_table(
        ["server", "c=1 req/s", "c=1 p50 / p99 ms", "c=32 req/s", "c=32 p50 / p99 ms"], rows
    )


if __name__ == "__main__":
    main()
