"""Autoscaling through real processes: a model that sleeps 20 ms per batch (so replicas add
capacity on two cores) behind an app with a 100 ms SLO, driven by 16 client threads."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from clipper.core.exceptions import Conflict
from tests.integration.cluster import ServerHandle, deploy, metric, wait_until

CLIENTS = 16
FAST = {"upscale_window_s": 1.0, "downscale_delay_s": 2.0}


def sleep_20ms(inputs: list[Any]) -> list[float]:
    time.sleep(0.02)
    return [float(x[0]) for x in inputs]


class Load:
    """16 threads sending distinct queries (no cache hit) until stopped; each answer is
    recorded as (monotonic time, was it the default)."""

    def __init__(self, server: ServerHandle, app: str) -> None:
        self.url = f"{server.query_url}/{app}/predict"
        self.stop = threading.Event()
        self.answers: list[tuple[float, bool]] = []
        self._ids = itertools.count()
        self._pool = ThreadPoolExecutor(CLIENTS)
        self._futures = [self._pool.submit(self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        deadline = time.monotonic() + 35
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                body = client.post(self.url, json={"input": [float(next(self._ids))]}).json()
                self.answers.append((time.monotonic(), bool(body["default"])))

    def answered_share(self, since: float, until: float) -> float:
        window = [default for at, default in self.answers if since <= at < until]
        return 1 - sum(window) / max(1, len(window))

    def close(self) -> None:
        self.stop.set()
        for future in self._futures:
            future.result(timeout=20)
        self._pool.shutdown()


def autoscaled_events(server: ServerHandle) -> list[dict[str, Any]]:
    return [e["detail"] for e in server.admin.get_events(limit=500) if e["kind"] == "autoscaled"]


def replicas(server: ServerHandle) -> tuple[int, int]:
    info = server.admin.get_model("auto", "1")
    assert info is not None
    return info["num_replicas"], info["ready_replicas"]


def test_scales_up_under_load_and_down_when_it_stops(configured_server: Any) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    autoscaling = {"min_replicas": 1, "max_replicas": 4, **FAST}
    deploy(server, "auto", sleep_20ms, slo_us=100_000, batch_size=4,
           resources={"num_cpus": 0.5}, autoscaling=autoscaling)  # fmt: skip
    load = Load(server, "auto")
    try:
        started = time.monotonic()
        wait_until(lambda: replicas(server)[1] >= 2, 20, "a second ready replica")
        scaled_at = time.monotonic()
        time.sleep(3.0)  # the load keeps running: what the new replicas answer
        ended = time.monotonic()
        ratio_after = metric(server, "clipper_autoscaler_queue_delay_ratio", model="auto")
    finally:
        load.close()
    [first, *_] = autoscaled_events(server)
    assert first["from"] == 1
    assert first["to"] >= 2
    assert first["reason"].startswith(f"scaled auto:1 from 1 to {first['to']}: queue delay ")
    assert first["reason"].endswith("% of SLO over 1 s")
    assert metric(server, "clipper_autoscaler_desired_replicas", model="auto") >= 2
    before = load.answered_share(started, scaled_at)
    after = load.answered_share(ended - 2.0, ended)
    assert after >= before
    assert after >= 0.95
    found = re.search(r"queue delay (\d+)%", first["reason"])
    assert found is not None
    ratio_before = int(found[1]) / 100
    assert ratio_after < ratio_before
    info = server.admin.get_model("auto", "1")
    assert info is not None
    assert info["autoscaling"]["max_replicas"] == 4
    assert info["autoscaling_last_decision"]["reason"].startswith("scaled auto:1")

    wait_until(lambda: replicas(server) == (1, 1), 30, "back to min_replicas once idle")
    last = autoscaled_events(server)[-1]
    assert last["to"] == 1
    assert "idle for 2 s" in last["reason"]
    assert all(e["to"] == e["from"] - 1 for e in autoscaled_events(server) if e["to"] < e["from"])


def test_a_step_up_stops_at_what_the_machines_cpus_hold(configured_server: Any) -> None:
    """Each replica asks half of this machine's CPUs: two fit, and under a load that wants
    more (20 ms per batch of 2) the autoscaler stops at two and says why."""
    server = configured_server(autoscaler_interval_s=0.25)
    half = (os.cpu_count() or 1) / 2
    autoscaling = {"min_replicas": 1, "max_replicas": 4, **FAST}
    deploy(server, "auto", sleep_20ms, slo_us=100_000, batch_size=2,
           resources={"num_cpus": half}, autoscaling=autoscaling)  # fmt: skip
    load = Load(server, "auto")
    seen: list[tuple[int, int]] = []

    def capped() -> bool:
        seen.append(replicas(server))
        return any(event["capped"] for event in autoscaled_events(server))

    try:
        wait_until(capped, 20, "a step up capped by the machine", interval_s=0.1)
    finally:
        load.close()
    [cap] = [event for event in autoscaled_events(server) if event["capped"]]
    assert cap["reason"].startswith("auto:1 stays at 2: queue delay")
    assert cap["reason"].endswith(
        f"; capped by the machine: 2 replicas of {half:g} CPU fit in the "
        f"{2 * half:g} of {os.cpu_count()} CPUs other replicas leave"
    )
    assert max(target for target, _ in seen) == 2
    assert max(ready for _, ready in seen) == 2
    assert all(event["to"] <= 2 for event in autoscaled_events(server))


def test_restart_keeps_the_settings_and_the_count_and_null_turns_it_off(
    configured_server: Any,
) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    autoscaling = {"min_replicas": 1, "max_replicas": 3, "downscale_delay_s": 600.0}
    deploy(server, "auto", sleep_20ms, slo_us=100_000, replicas=2,
           resources={"num_cpus": 0.5}, autoscaling=autoscaling)  # fmt: skip
    with pytest.raises(Conflict, match="autoscaled between 1 and 3 replicas"):
        server.admin.set_num_replicas("auto", 1)

    server.stop()
    server = configured_server.restart(server)
    server.admin.wait_model_ready("auto", "1")
    wait_until(
        lambda: metric(server, "clipper_autoscaler_current_replicas", model="auto") == 2,
        10, "the autoscaler to look at auto:1 after the restart",
    )  # fmt: skip
    assert metric(server, "clipper_autoscaler_desired_replicas", model="auto") == 2
    info = server.admin.get_model("auto", "1")
    assert info is not None
    assert info["autoscaling"] == {**info["autoscaling"], **autoscaling}
    assert replicas(server) == (2, 2)  # resumed at the count it had, not at min_replicas

    info = server.admin.set_autoscaling("auto", None)
    assert info["autoscaling"] is None
    server.admin.set_num_replicas("auto", 1)
    wait_until(lambda: replicas(server) == (1, 1), 20, "the manual count")
    wait_until(
        lambda: metric(server, "clipper_autoscaler_desired_replicas", model="auto") == 0,
        10, "the autoscaler to drop the version's gauges",
    )  # fmt: skip
    assert not [e for e in autoscaled_events(server) if e["to"] != e["from"]]
