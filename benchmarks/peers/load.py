"""Closed-loop load on one request: wrk (Debian's) with a Lua script for the POST, or the
project's Python load generator where wrk is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadgen import run_load
from benchmarks.peers.system import Request

__all__ = ["LoadRun", "drive", "tool_name"]

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_SLACK_S = 30.0


@dataclass(frozen=True)
class LoadRun:
    """What one run measured."""

    duration_s: float
    requests: int
    """Responses received, whatever their status."""
    non_2xx: int
    socket_errors: int
    """Connect, read, write and timeout errors (requests that got no response)."""
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_s(self) -> float:
        """2xx answers per second."""
        return (self.requests - self.non_2xx) / self.duration_s if self.duration_s else 0.0


def tool_name() -> str:
    """The load generator in use."""
    return "wrk" if shutil.which("wrk") else "loadgen"


def _lua(request: Request) -> str:
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in request.headers.items())
    body = request.body.decode()
    if "]==]" in body:
        raise ValueError("the request body may not contain ']==]' (the Lua string's end)")
    return f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\n{headers}'


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _UNITS_MS[match.group(2)] if match else float("nan")


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return sum(int(group) for group in match.groups()) if match else 0


def parse_wrk(text: str, duration_s: float) -> LoadRun:
    """A LoadRun from wrk's `--latency` report (its measured duration wins over the asked)."""
    elapsed = re.search(r"requests in ([\d.]+)(us|ms|s|m)", text)
    if elapsed:
        duration_s = float(elapsed.group(1)) * _UNITS_MS[elapsed.group(2)] / 1000
    return LoadRun(
        duration_s=duration_s,
        requests=_count(r"(\d+) requests in", text),
        non_2xx=_count(r"Non-2xx or 3xx responses: (\d+)", text),
        socket_errors=_count(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
        ),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
    )


def drive(request: Request, concurrency: int, duration_s: float) -> LoadRun:
    """`duration_s` seconds of closed-loop load at `concurrency` connections."""
    if shutil.which("wrk") is None:
        result = run_load(
            "127.0.0.1", request.port, request.path, request.body, concurrency, duration_s, 0
        )
        return LoadRun(
            duration_s, len(result.latencies_s) + result.errors, result.errors, 0,
            result.median_ms, result.percentile_ms(0.99),
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="peers-wrk-") as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(_lua(request))
        argv = [
            "wrk", "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--timeout", "10s",
            "--latency", "-s", str(script), f"http://127.0.0.1:{request.port}{request.path}",
        ]  # fmt: skip
        output = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=duration_s + _SLACK_S
        ).stdout
    return parse_wrk(output, duration_s)
