"""Soak test: mixed valid and invalid traffic against a real server for a long while.

Run: `.venv/bin/python -m benchmarks.soak [--duration 600] [--rate 150] [--warmup 60]`.
Starts one server (its own state directory, small limits so every invalid class is cheap
to send), deploys a `doubles` model, then sends requests at a bounded rate from a fixed
mix: valid single inputs, batches and Open Inference Protocol calls, and malformed JSON,
wrong types, unknown apps, over-limit batches, too deep JSON, oversized bodies and too many
headers. Every `--sample` seconds it reads, from /proc/<pid>/smaps_rollup, the resident set
size (RSS), the proportional set size (PSS) and PSS's anonymous part (`Pss_Anon`: the heap,
what a leak grows) of the server and of its workers. PSS divides each shared-library page
among the processes mapping it, so it moves whenever other processes on the machine start
or stop; RSS and the anonymous part do not. It prints the throughput, the responses by
status and error kind, the 5xx count, and memory at the end of warm-up and at the end with
the growth in between; exit status 1 if any 5xx came back or the server's RSS or anonymous
memory grew by 10 % or more after warm-up.

With `--attacks` (issue 28) the run has three equal phases, before, during and after an
attack that runs beside the same mix: an idle connection flood on the query and admin ports
(from 127.0.0.2-9, more connections than either port allows), clients that send most of a
large body and stall, and a model that prints as fast as it can. Per phase it reports the
valid requests' p99 latency, the 5xx responses and transport failures of the mix, and the
server's RSS and open file descriptors at the phase's end (and their peak); exit status 1 if
the mix got any 5xx or failure, a phase's p99 passed the SLO, or the server's RSS after the
attack is not within 10 % of its RSS before it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import socket
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.harness import BenchServer, bench_server
from benchmarks.table import print_table

__all__ = ["feature_sum", "idle_connections", "main", "storm"]

LIMITS_ENV = {
    "CLIPPER_MAX_BODY_BYTES": str(256 * 1024),
    "CLIPPER_MAX_BATCH_INPUTS": "64",
    "CLIPPER_MAX_JSON_DEPTH": "16",
    "CLIPPER_MAX_HEADERS": "50",
}
CONCURRENCY = 16
MAX_GROWTH = 0.10
SLO_US = 1_000_000
PHASES = ("before", "during", "after")
ATTACK_ENV = {
    "CLIPPER_MAX_CONNECTIONS": "512",
    "CLIPPER_ADMIN_MAX_CONNECTIONS": "64",
    "CLIPPER_MAX_BUFFERED_BODY_BYTES": str(4 * 1024 * 1024),
    "CLIPPER_LOG_MAX_BYTES": str(1024 * 1024),
}
FLOOD_SOURCES = [f"127.0.0.{host}" for host in range(2, 10)]
FLOOD_QUERY, FLOOD_ADMIN, HALF_SENT = 1500, 300, 40


def storm(xs: list[Any]) -> list[str]:
    """The attack's model: starts, once, a thread that prints as fast as it can."""
    import sys
    import threading

    def shout() -> None:
        line = "x" * 1023 + "\n"
        while True:
            sys.stdout.write(line * 64)

    if not getattr(storm, "started", False):
        storm.started = True  # type: ignore[attr-defined]
        threading.Thread(target=shout, daemon=True).start()
    return ["storming" for _ in xs]


def feature_sum(xs: list[Any]) -> list[float]:
    """The soak's model: the sum of each input's features."""
    return [float(sum(x)) for x in xs]


def _v2(shape: list[int]) -> bytes:
    count = shape[0] * shape[1]
    tensor = {"name": "input", "datatype": "FP64", "shape": shape, "data": [0.5] * count}
    return orjson.dumps({"inputs": [tensor]})


def _deep(depth: int) -> bytes:
    return b'{"input": [1.0], "extra": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass(frozen=True, slots=True)
class Probe:
    """One kind of request in the mix: its name, path, body, extra headers and weight."""

    name: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    weight: int = 1


PROBES = [
    Probe("valid", "/soak/predict", b'{"input": [1.0, 2.0, 3.0]}', weight=30),
    Probe("valid batch", "/soak/predict", orjson.dumps({"input_batch": [[1.0, 2.0]] * 16}),
          weight=10),
    Probe("valid v2", "/v2/models/soak/infer", _v2([4, 3]), weight=10),
    Probe("malformed json", "/soak/predict", b'{"input": [1.0,', weight=4),
    Probe("wrong type", "/soak/predict", b'{"input": "seven"}', weight=4),
    Probe("unknown app", "/nope/predict", b'{"input": [1.0]}', weight=4),
    Probe("batch over limit", "/soak/predict", orjson.dumps({"input_batch": [[1.0]] * 65}),
          weight=3),
    Probe("too deep", "/soak/predict", _deep(40), weight=3),
    Probe("body over limit", "/soak/predict", b'{"input": [' + b"1.0," * 80_000 + b"1.0]}"),
    Probe("v2 bad shape", "/v2/models/soak/infer", _v2([2, 2])[:-3] + b"]}", weight=3),
    Probe("too many headers", "/soak/predict", b'{"input": [1.0]}',
          headers={f"x-h{i}": "1" for i in range(60)}),
]  # fmt: skip


def _schedule() -> itertools.cycle[Probe]:
    """The probes in a fixed interleaved order, each as often as its weight."""
    slots = [(index / probe.weight, probe) for probe in PROBES for index in range(probe.weight)]
    return itertools.cycle([probe for _, probe in sorted(slots, key=lambda slot: slot[0])])


@dataclass(frozen=True)
class Memory:
    """Resident, proportional and anonymous proportional set sizes, in bytes."""

    rss: int = 0
    pss: int = 0
    anon: int = 0

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.rss + other.rss, self.pss + other.pss, self.anon + other.anon)


def memory_of(pid: int) -> Memory:
    """The process's memory; zeros once it is gone."""
    sizes = {"Rss:": 0, "Pss:": 0, "Pss_Anon:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(" ")
            if key in sizes:
                sizes[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return Memory()
    return Memory(sizes["Rss:"], sizes["Pss:"], sizes["Pss_Anon:"])


@dataclass
class Tally:
    """Responses by probe and status/error kind."""

    by_kind: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    server_errors: int = 0
    failures: int = 0
    sent: int = 0
    phase: str = PHASES[0]
    """Set by the attack's driver; what the counts below are kept by."""
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors_by_phase: collections.Counter[str] = field(default_factory=collections.Counter)

    def record(self, probe: Probe, response: httpx.Response, latency_s: float = 0.0) -> None:
        if probe.name.startswith("valid"):
            self.latencies[self.phase].append(latency_s)
        if response.status_code >= 500 or (
            probe.name.startswith("valid") and response.status_code != 200
        ):
            self.errors_by_phase[self.phase] += 1
        kind = ""
        if response.status_code != 200:
            try:
                body = response.json()
                kind = str(body.get("error", ""))[:40]
            except ValueError:
                kind = "(not JSON)"
        self.by_kind[(probe.name, f"{response.status_code} {kind}".strip())] += 1
        if response.status_code >= 500:
            self.server_errors += 1


@dataclass
class Sample:
    """Memory at one moment."""

    elapsed_s: float
    server: Memory
    workers: Memory
    open_fds: int = 0


async def _drive(url: str, rate: float, duration_s: float, tally: Tally) -> None:
    """Send the mix at `rate` requests/s for `duration_s` (at most CONCURRENCY in flight)."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    schedule = _schedule()
    in_flight = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(probe: Probe) -> None:
            started = time.monotonic()
            try:
                response = await client.post(probe.path, content=probe.body, headers=probe.headers)
                tally.record(probe, response, time.monotonic() - started)
            except httpx.HTTPError:
                tally.failures += 1
                tally.errors_by_phase[tally.phase] += 1
            finally:
                in_flight.release()

        async with asyncio.TaskGroup() as tasks:
            start = time.monotonic()
            for count in itertools.count():
                due = start + count / rate  # a fixed schedule: no catching up in bursts
                now = time.monotonic()
                if now - start >= duration_s:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                await in_flight.acquire()
                tally.sent += 1
                tasks.create_task(one(next(schedule)))


async def _sample(server: BenchServer, every_s: float, samples: list[Sample]) -> None:
    start = time.monotonic()
    while True:
        replicas = await asyncio.to_thread(server.admin, "get_all_containers", {"verbose": True})
        workers = sum(
            (memory_of(replica["pid"]) for replica in replicas if replica.get("pid")), Memory()
        )
        elapsed_s = time.monotonic() - start
        pid = server.process.pid
        samples.append(Sample(elapsed_s, memory_of(pid), workers, _open_fds(pid)))
        await asyncio.sleep(every_s)


def _open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def _soak(server: BenchServer, args: argparse.Namespace) -> tuple[Tally, list[Sample]]:
    tally, samples = Tally(), []
    url = f"http://127.0.0.1:{server.query_port}"
    sampler = asyncio.create_task(_sample(server, args.sample, samples))
    try:
        await _drive(url, args.rate, args.duration, tally)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    return tally, samples


async def _attacked(server: BenchServer, args: argparse.Namespace) -> tuple[Tally, list[Sample]]:
    """The mix for the whole run; the attack in its middle third."""
    tally, samples = Tally(), []
    url = f"http://127.0.0.1:{server.query_port}"
    phase_s = args.duration / len(PHASES)
    sampler = asyncio.create_task(_sample(server, args.sample, samples))
    driver = asyncio.create_task(_drive(url, args.rate, args.duration, tally))
    try:
        await asyncio.sleep(phase_s)
        tally.phase = "during"
        sockets = await asyncio.to_thread(_start_attack, server)  # off the mix's loop
        try:
            await asyncio.sleep(phase_s)
        finally:
            await asyncio.to_thread(_stop_attack, server, sockets)
        tally.phase = "after"
        await driver
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    return tally, samples


def _start_attack(server: BenchServer) -> list[socket.socket]:
    """The print storm, the flood and the half-sent bodies; their sockets."""
    server.admin("set_num_replicas", {"model_name": "storm", "num_replicas": 1})
    server.admin("wait_model_ready", {"model_name": "storm", "model_version": "1"})
    httpx.post(f"http://127.0.0.1:{server.query_port}/storm/predict", json={"input": [1.0]},
               timeout=30)  # fmt: skip
    return [
        *idle_connections(server.query_port, FLOOD_QUERY),
        *idle_connections(server.admin_port, FLOOD_ADMIN),
        *_half_sent(server.query_port, HALF_SENT, int(LIMITS_ENV["CLIPPER_MAX_BODY_BYTES"])),
    ]


def _stop_attack(server: BenchServer, sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
    server.admin("set_num_replicas", {"model_name": "storm", "num_replicas": 0})


def idle_connections(port: int, count: int) -> list[socket.socket]:
    """`count` connections to `port` from FLOOD_SOURCES that send nothing."""
    sockets = []
    for index in range(count):
        sock = socket.socket()
        sock.bind((FLOOD_SOURCES[index % len(FLOOD_SOURCES)], 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def _half_sent(port: int, count: int, size: int) -> list[socket.socket]:
    """`count` requests announcing a `size` body that send all of it but the last KiB."""
    head = b"POST /soak/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    sockets = []
    for index in range(count):
        sock = socket.socket()
        sock.bind((FLOOD_SOURCES[index % len(FLOOD_SOURCES)], 0))
        sock.settimeout(5)
        with contextlib.suppress(OSError):  # refused (503) past the body budget: also fine
            sock.connect(("127.0.0.1", port))
            sock.sendall(head + b"0" * (size - 1024))
        sockets.append(sock)
    return sockets


def _attack_report(tally: Tally, samples: list[Sample], args: argparse.Namespace) -> bool:
    """The per-phase table; whether the mix stayed whole and within its SLO and the memory
    came back."""
    phase_s = args.duration / len(PHASES)
    print(f"\n## Soak under attack: {args.duration:g} s at {args.rate:g} requests/s offered\n")
    rows, ends, ok = [], {}, True
    for index, phase in enumerate(PHASES):
        inside = [s for s in samples if index * phase_s <= s.elapsed_s < (index + 1) * phase_s]
        end = inside[-1] if inside else samples[-1]
        ends[phase] = end
        latencies = tally.latencies.get(phase, [])
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else 0.0
        ok &= tally.errors_by_phase[phase] == 0 and p99 < SLO_US / 1e6
        rows.append([
            phase, str(len(latencies)), f"{p99 * 1000:.1f}", str(tally.errors_by_phase[phase]),
            _mib(end.server.rss), str(end.open_fds), str(max((s.open_fds for s in inside),
                                                             default=0)),
        ])  # fmt: skip
    print_table(["phase", "valid requests", "p99 ms", "errors (5xx, failures, non-200 valid)",
                 "server RSS MiB (end)", "open fds (end)", "open fds (peak)"], rows)  # fmt: skip
    before, after = ends["before"].server.rss, ends["after"].server.rss
    growth = (after - before) / max(before, 1)
    print(f"\nserver RSS after the attack against before it: {growth:+.1%}")
    return ok and growth < MAX_GROWTH


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def _report(tally: Tally, samples: list[Sample], args: argparse.Namespace) -> bool:
    answered = sum(tally.by_kind.values())
    print(f"\n## Soak: {args.duration:g} s at {args.rate:g} requests/s offered\n")
    print_table(["measure", "value"], [
        ["requests sent", str(tally.sent)],
        ["responses", str(answered)],
        ["throughput (responses/s)", f"{answered / args.duration:.1f}"],
        ["5xx responses", str(tally.server_errors)],
        ["transport failures", str(tally.failures)],
    ])  # fmt: skip
    print("\n### Responses by request kind and status\n")
    rows = [[probe, status, str(count)] for (probe, status), count in sorted(tally.by_kind.items())]
    print_table(["request", "status", "count"], rows)
    warm = next((s for s in samples if s.elapsed_s >= args.warmup), samples[0])
    last = samples[-1]
    print("\n### Memory (MiB: RSS, PSS, and PSS's anonymous part)\n")
    step = max(1, len(samples) // 20)
    print_table(["elapsed s", "server RSS", "server PSS", "server anon", "workers RSS",
                 "workers PSS", "workers anon"], [
        [f"{s.elapsed_s:.0f}", _mib(s.server.rss), _mib(s.server.pss), _mib(s.server.anon),
         _mib(s.workers.rss), _mib(s.workers.pss), _mib(s.workers.anon)]
        for s in [*samples[::step], last]
    ])  # fmt: skip
    print()
    rows = []
    for who, start, end in (("server", warm.server, last.server),
                            ("workers", warm.workers, last.workers)):  # fmt: skip
        rows += [
            _growth_row(f"{who} RSS", start.rss, end.rss),
            _growth_row(f"{who} PSS", start.pss, end.pss),
            _growth_row(f"{who} anonymous", start.anon, end.anon),
        ]
    print_table(["memory", f"after warm-up ({warm.elapsed_s:.0f} s)", "at the end", "growth"],
                rows)  # fmt: skip
    rss_growth = (last.server.rss - warm.server.rss) / max(warm.server.rss, 1)
    anon_growth = (last.server.anon - warm.server.anon) / max(warm.server.anon, 1)
    return tally.server_errors == 0 and max(rss_growth, anon_growth) < MAX_GROWTH


def _growth_row(name: str, warm: int, last: int) -> list[str]:
    return [name, _mib(warm), _mib(last), f"{(last - warm) / max(warm, 1):+.1%}"]


def main() -> int:
    """Run the soak; 0 when no 5xx came back and server memory grew under 10 %."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--attacks", action="store_true",
                        help="attack the server in the run's middle third (see above)")  # fmt: skip
    args = parser.parse_args()
    env = {**LIMITS_ENV, **(ATTACK_ENV if args.attacks else {})}
    with bench_server(env) as server:
        server.deploy("soak", feature_sum, slo_us=SLO_US)
        if args.attacks:  # the storm's app and model exist before the baseline is taken;
            server.deploy("storm", storm, slo_us=SLO_US, replicas=0)  # it starts in the attack
            tally, samples = asyncio.run(_attacked(server, args))
            return 0 if _attack_report(tally, samples, args) else 1
        tally, samples = asyncio.run(_soak(server, args))
    return 0 if _report(tally, samples, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
