"""Driving a POST endpoint with wrk (Debian's `wrk`), falling back to benchmarks.loadgen."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadgen import run_load

__all__ = ["Measurement", "measure"]

_LUA = """wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Measurement:
    """Throughput and latency percentiles of one run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    tool: str


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def measure(port: int, path: str, body: bytes, concurrency: int, duration_s: float) -> Measurement:
    """Warm up for 1 s, then measure `duration_s` of closed-loop load at `concurrency`."""
    if shutil.which("wrk") is None:
        result = run_load("127.0.0.1", port, path, body, concurrency, duration_s)
        return Measurement(
            result.throughput, result.median_ms, result.percentile_ms(0.99), "loadgen"
        )
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(_LUA.format(body=body.decode()))
        url = f"http://127.0.0.1:{port}{path}"
        base = ["wrk", "-t1", f"-c{concurrency}", "-s", str(script), "--latency"]
        subprocess.run([*base, "-d1s", url], capture_output=True, check=True)
        output = subprocess.run(
            [*base, f"-d{duration_s:g}s", url], capture_output=True, check=True, text=True
        ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return Measurement(
        float(rate.group(1)) if rate else 0.0,
        _latency_ms(output, "50"),
        _latency_ms(output, "99"),
        "wrk",
    )
