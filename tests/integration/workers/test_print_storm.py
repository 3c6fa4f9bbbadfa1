"""A model that prints as fast as it can (issue 28, item 4): its replica's logs stay within
their cap (`log_max_bytes` per file, `log_backups` kept) and another app's queries stay
within their SLO meanwhile."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.soak import storm
from tests.integration.cluster import ServerFactory, deploy

LOG_MAX_BYTES = 256 * 1024
LOG_BACKUPS = 2
SLO_US = 500_000
STORM_S = 6.0
STORM_GIVE_UP_S = 40.0
SLACK_BYTES = 64 * 1024  # the server's own lines about the replica, appended by name


def calm(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def bytes_of(paths: Iterable[Path]) -> int:
    """Their total size now (a file renamed away meanwhile counts under its new name)."""
    total = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def test_a_printing_model_stays_within_its_log_cap_and_slows_no_one(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("storm", log_max_bytes=LOG_MAX_BYTES, log_backups=LOG_BACKUPS)
    deploy(server, "storm", storm, input_type="doubles")
    deploy(server, "calm", calm, slo_us=SLO_US)
    assert server.predict("storm", {"input": [1.0]}).json()["output"] == "storming"

    logs = server.state_dir / "logs"
    latencies: list[float] = []
    largest = 0
    started_at = time.monotonic()

    def storming() -> bool:
        """For STORM_S at least, and until the log has rotated through its backups (a
        slow machine prints less per second), at most STORM_GIVE_UP_S."""
        elapsed = time.monotonic() - started_at
        rotated = len(list(logs.glob("storm-*.log.*"))) >= LOG_BACKUPS
        return elapsed < STORM_GIVE_UP_S and (elapsed < STORM_S or not rotated)

    with httpx.Client(base_url=server.query_url, timeout=10) as client:
        while storming():
            started = time.monotonic()
            answer = client.post("/calm/predict", json={"input": [1.0, 2.0]}).json()
            latencies.append(time.monotonic() - started)
            assert answer["default"] is False, answer
            largest = max(largest, bytes_of(logs.glob("storm-*")))
            time.sleep(0.02)

    storm_bytes = bytes_of(logs.glob("storm-*"))
    cap = LOG_MAX_BYTES * (LOG_BACKUPS + 1) + SLACK_BYTES
    assert storm_bytes <= cap, sorted(p.name for p in logs.glob("storm-*"))
    assert largest <= cap
    assert len(list(logs.glob("storm-*.log.*"))) == LOG_BACKUPS  # it did rotate
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert p99 < SLO_US / 1e6, f"p99 {p99:.3f} s over {len(latencies)} queries"
