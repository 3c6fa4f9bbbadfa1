"""Does the server keep memory after floods of idle connections? Repeated floods, side by side.

Run: `.venv/bin/python -m benchmarks.flood_memory [--floods 3] [--connections 1500]`.
Starts one server with a `doubles` model, then `--floods` times opens `--connections`
connections to the query port that send nothing (from 127.0.0.2-9), holds them 3 s, closes
them and waits 4 s. After each flood it prints the server's RSS and its growth against the
start, and at the end the memory regions (from /proc/<pid>/smaps) that grew most. A server
that gives a flood's memory back shows the same RSS after every flood; one that keeps part of
it grows by about the same amount each time (issue 28: +3.5 MiB per flood of 1500, until a
closed connection no longer waited in a reference cycle for a full collection).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import httpx

from benchmarks.harness import bench_server
from benchmarks.soak import feature_sum, idle_connections
from benchmarks.table import print_table

__all__ = ["main"]

HOLD_S, SETTLE_S = 3.0, 4.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def regions_kib(pid: int) -> dict[str, int]:
    """Resident KiB per mapping name (`[heap]`, `[anon]`, a library's path)."""
    resident: dict[str, int] = {}
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            resident[name] = resident.get(name, 0) + int(line.split()[1])
    return resident


def flood(port: int, count: int) -> None:
    sockets = idle_connections(port, count)
    time.sleep(HOLD_S)
    for sock in sockets:
        sock.close()
    time.sleep(SETTLE_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floods", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1500)
    args = parser.parse_args()
    with bench_server() as server:
        server.deploy("soak", feature_sum, slo_us=1_000_000)
        pid = server.process.pid
        with httpx.Client(base_url=f"http://127.0.0.1:{server.query_port}") as client:
            for value in range(200):  # warm: every code path of a query run once
                client.post("/soak/predict", json={"input": [float(value)]})
        time.sleep(2)
        start, regions = rss_mib(pid), regions_kib(pid)
        rows = [["start", f"{start:.1f}", "-"]]
        for index in range(args.floods):
            flood(server.query_port, args.connections)
            now = rss_mib(pid)
            rows.append([f"after flood {index + 1}", f"{now:.1f}", f"{(now / start - 1):+.1%}"])
        print(f"\n## RSS after floods of {args.connections} idle connections\n")
        print_table(["when", "server RSS MiB", "vs start"], rows)
        grown = regions_kib(pid)
        growth = {key: grown[key] - regions.get(key, 0) for key in grown}
        top = [key for key in sorted(growth, key=growth.__getitem__)[-3:] if growth[key] > 0]
        print("\n" + "\n".join(f"{key}: {regions.get(key, 0)} -> {grown[key]} KiB" for key in top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
