"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, one request in
flight on each, latencies recorded per request. Lean enough (raw asyncio streams, one
pre-built request) that one core drives tens of thousands of requests per second."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

__all__ = ["LoadResult", "run_load"]


@dataclass
class LoadResult:
    """What one load run measured."""

    concurrency: int
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    defaults: int = 0

    @property
    def throughput(self) -> float:
        """Answered requests per second (model answers and default answers)."""
        return len(self.latencies_s) / self.duration_s if self.duration_s else 0.0

    @property
    def goodput(self) -> float:
        """Requests per second answered by a model (not by the default output)."""
        answered = len(self.latencies_s) - self.defaults
        return answered / self.duration_s if self.duration_s else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """A latency percentile, in milliseconds."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return ordered[index] * 1000

    @property
    def median_ms(self) -> float:
        """Median latency in milliseconds."""
        return statistics.median(self.latencies_s) * 1000 if self.latencies_s else float("nan")


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """One POST request with a JSON body, keep-alive."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    return status, body


async def _connection(
    host: str, port: int, request: bytes, stop_at: float, result: LoadResult, record: bool
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            if status != 200:
                result.errors += 1
                continue
            if record:
                result.latencies_s.append(time.perf_counter() - started)
                if b'"default":true' in body:
                    result.defaults += 1
    finally:
        writer.close()


async def run_load_async(
    host: str, port: int, path: str, body: bytes, concurrency: int, duration_s: float,
    warmup_s: float = 1.0,
) -> LoadResult:  # fmt: skip
    """Warm up, then measure `duration_s` of closed-loop load."""
    request = build_request(host, port, path, body)
    if warmup_s > 0:
        scratch = LoadResult(concurrency, warmup_s)
        stop_at = time.perf_counter() + warmup_s
        await asyncio.gather(
            *(_connection(host, port, request, stop_at, scratch, False) for _ in range(concurrency))
        )
    result = LoadResult(concurrency, duration_s)
    stop_at = time.perf_counter() + duration_s
    await asyncio.gather(
        *(_connection(host, port, request, stop_at, result, True) for _ in range(concurrency))
    )
    return result


def run_load(
    host: str, port: int, path: str, body: bytes, concurrency: int, duration_s: float,
    warmup_s: float = 1.0,
) -> LoadResult:  # fmt: skip
    """Synchronous wrapper of `run_load_async` (uses uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(
            run_load_async(host, port, path, body, concurrency, duration_s, warmup_s)
        )
    return uvloop.run(run_load_async(host, port, path, body, concurrency, duration_s, warmup_s))
