"""What the control process decides from the query traffic, with two frontends (issue 26):
the autoscaler, scale to zero, canary rollouts and scale-down drains see every frontend's
traffic, though the control process serves none. Real processes throughout."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from benchmarks.steady_load import SteadyLoad
from clipper.artifacts.python import closure_artifact
from clipper.frontends.peer import ask_peer
from clipper.rpc.fanout import frontend_peer_path
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until
from tests.integration.rollout.versions import answers, ended, raises_on_tenth

TO_ZERO = {
    "min_replicas": 0, "max_replicas": 2, "scale_to_zero_after_s": 2.0,
    "upscale_window_s": 1.0, "downscale_delay_s": 1.0,
}  # fmt: skip
FAST_PLAN = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 1.0, "min_queries": 15}


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    return module_server("signals", frontends=2, autoscaler_interval_s=0.25)


def requests_by_frontend(server: ServerHandle) -> dict[int, float]:
    path = frontend_peer_path(server.state_dir, None)
    rows = asyncio.run(ask_peer(path, {"op": "stats"}))["frontends"]
    return {int(row["index"]): float(row.get("inputs_queued", 0)) for row in rows}


def both_served(server: ServerHandle, before: dict[int, float]) -> bool:
    after = requests_by_frontend(server)
    return all(after[index] > count for index, count in before.items())


def roll_out(server: ServerHandle, app: str, func: Any, **plan: Any) -> None:
    server.admin.upload_artifact(app, "2", closure_artifact(func))
    server.admin.add_model(app, "2", "doubles", num_replicas=1, rollout=plan)


def replicas(server: ServerHandle, app: str) -> tuple[int, int]:
    info = server.admin.get_model(app, "1")
    assert info is not None
    return info["num_replicas"], info["ready_replicas"]


def fresh_query(server: ServerHandle, app: str, value: float) -> dict[str, Any]:
    """One query on a new connection (the kernel picks its frontend)."""
    reply = httpx.post(f"{server.query_url}/{app}/predict", json={"input": [value]}, timeout=20)
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


def test_a_rollout_through_both_frontends_is_promoted_unseen(server: ServerHandle) -> None:
    deploy(server, "good", answers(1.0), batch_size=1)
    before = requests_by_frontend(server)
    with SteadyLoad(server.query_url, "good", threads=8) as load:
        roll_out(server, "good", answers(2.0), **FAST_PLAN)
        status = ended(server, "good", 20)
    assert status["state"] == "promoted", status
    assert load.failures == []
    assert load.outputs[2.0] > 0
    assert load.outputs[1.0] > 0
    assert both_served(server, before)
    assert server.admin.get_current_model_version("good") == "2"


def test_a_rollout_failing_through_both_frontends_is_rolled_back_unseen(
    server: ServerHandle,
) -> None:
    deploy(server, "flaky", answers(1.0))
    before = requests_by_frontend(server)
    with SteadyLoad(server.query_url, "flaky", threads=8) as load:
        roll_out(server, "flaky", raises_on_tenth(2.0), shadow_s=0, step_s=5, min_queries=15)
        status = ended(server, "flaky", 15)
        answered_then = load.answered
        wait_until(lambda: load.answered > answered_then + 20, 10, "queries after the rollback")
    assert status["state"] == "rolled_back", status
    assert status["reason"].startswith("step 1 (5%): max_error_rate: new version error_rate")
    assert load.failures == []  # each input the new version failed was asked of version 1
    assert both_served(server, before)
    assert server.admin.get_current_model_version("flaky") == "1"
    wait_until(lambda: server.admin.get_num_replicas("flaky", "2") == 0, 10, "v2 parked")


def test_scale_down_under_load_through_both_frontends_fails_nothing(
    server: ServerHandle,
) -> None:
    deploy(server, "shrink", answers(1.0, 0.02), replicas=3)
    before = requests_by_frontend(server)
    with SteadyLoad(server.query_url, "shrink", threads=8) as load:
        wait_until(lambda: load.answered > 40, 10, "load on every replica")
        server.admin.set_num_replicas("shrink", 1, "1")
        wait_until(lambda: replicas(server, "shrink") == (1, 1), 30, "two replicas drained")
        answered_then = load.answered
        wait_until(lambda: load.answered > answered_then + 20, 10, "queries after the drain")
    assert load.failures == []
    assert both_served(server, before)
    log = server.log_path.read_text(errors="replace")  # the frontends' log lines too
    assert "queries of shrink:1 after" not in log  # no batch was lost with a replica


def test_idle_counts_every_frontend_and_a_query_wakes_a_version_at_zero(
    server: ServerHandle,
) -> None:
    deploy(server, "cold", answers(3.0), slo_us=10_000_000, autoscaling=TO_ZERO)
    before = requests_by_frontend(server)
    until, value = time.monotonic() + 3.5, 100.0  # past scale_to_zero_after_s: it stays
    while time.monotonic() < until:
        value += 1  # distinct inputs: none answered by the cache, each dispatched
        assert fresh_query(server, "cold", value)["default"] is False
        time.sleep(0.1)
    assert replicas(server, "cold")[0] == 1
    assert both_served(server, before)

    wait_until(lambda: replicas(server, "cold") == (0, 0), 20, "scaled to zero once idle")
    with ThreadPoolExecutor(8) as pool:  # new connections: both frontends queue them
        woken = list(pool.map(lambda x: fresh_query(server, "cold", float(x)), range(8)))

    assert [a["default"] for a in woken] == [False] * 8, woken
    assert replicas(server, "cold")[0] == 1


def sleep_20ms(inputs: list[Any]) -> list[float]:
    time.sleep(0.02)
    return [float(x[0]) for x in inputs]


def test_the_autoscaler_scales_up_on_load_sent_through_both_frontends(
    configured_server: ServerFactory,
) -> None:
    server = configured_server(frontends=2, autoscaler_interval_s=0.25)
    autoscaling = {"min_replicas": 1, "max_replicas": 3, "upscale_window_s": 1.0,
                   "downscale_delay_s": 2.0}  # fmt: skip
    deploy(server, "auto", sleep_20ms, slo_us=100_000, batch_size=4,
           resources={"num_cpus": 0.5}, autoscaling=autoscaling)  # fmt: skip
    before = requests_by_frontend(server)
    with SteadyLoad(server.query_url, "auto", threads=16):
        wait_until(lambda: replicas(server, "auto")[1] >= 2, 20, "a second ready replica")
    events = [e["detail"] for e in server.admin.get_events(limit=200) if e["kind"] == "autoscaled"]
    assert events[0]["from"] == 1, events
    assert events[0]["to"] >= 2, events
    assert "queue delay" in events[0]["reason"]
    assert both_served(server, before)
