"""The query path against real workers: batching, deadlines, cache, coalescing, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.cluster import ServerHandle, deploy, metric, wait_until

SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"


async def _predict_many(server: ServerHandle, app: str, bodies: list[Any]) -> list[Any]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=server.query_url, timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post(f"/{app}/predict", json=body) for body in bodies)
        )
    return [response.json() for response in responses]


def one_frontend(server: ServerHandle) -> httpx.Client:
    """A keep-alive client: its queries reach one frontend, so one prediction cache (each
    frontend has its own when CLIPPER_FRONTENDS runs several)."""
    client = httpx.Client(base_url=server.query_url, timeout=30)
    _CLIENTS.append(client)
    return client


_CLIENTS: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def batch_size_of_each(inputs: list[Any]) -> list[float]:
    """Sleeps 0.5 s per batch; answers each input with the size of its batch."""
    time.sleep(0.5)
    return [float(len(inputs))] * len(inputs)


def test_fixed_batch_size_fills_batches_under_saturation(server: ServerHandle) -> None:
    deploy(server, "fixed9", batch_size_of_each, batch_size=9, replicas=3, slo_us=60_000_000)
    server.admin.set_cache(False, app_name="fixed9")
    bodies = [{"input": [float(i)]} for i in range(450)]
    replies = asyncio.run(_predict_many(server, "fixed9", bodies))
    sizes = [reply["output"] for reply in replies]
    assert all(not reply["default"] for reply in replies)
    assert max(sizes) == 9
    assert sizes.count(9) / len(sizes) >= 0.7
    # Every input was computed exactly once: nothing padded, duplicated or invented.
    assert metric(server, "clipper_model_batch_size_sum", model="fixed9") == 450


def echo_first(inputs: list[Any]) -> list[float]:
    """Each output is the first element of its own input."""
    return [float(x[0]) for x in inputs]


def test_each_answer_belongs_to_its_own_input(server: ServerHandle) -> None:
    deploy(server, "echo", echo_first, batch_size=-1)
    server.admin.set_cache(False, app_name="echo")
    bodies = [{"input": [float(i), 0.5]} for i in range(200)]
    replies = asyncio.run(_predict_many(server, "echo", bodies))
    assert [reply["output"] for reply in replies] == [float(i) for i in range(200)]


def count_calls(inputs: list[Any]) -> list[float]:
    """Returns how many inputs this worker has computed so far, after a short pause."""
    global _computed
    time.sleep(0.2)
    _computed = globals().get("_computed", 0) + len(inputs)
    return [float(_computed)] * len(inputs)


def test_identical_concurrent_queries_run_once(server: ServerHandle) -> None:
    deploy(server, "coalesce", count_calls)
    replies = asyncio.run(_predict_many(server, "coalesce", [{"input": [7.0]}] * 20))
    # Queries coalesce within a frontend: with several (CLIPPER_FRONTENDS), once on each.
    frontends = len(server.admin.status().get("frontends", [])) or 1
    computed = metric(server, "clipper_model_batch_size_sum", model="coalesce")
    assert {reply["output"] for reply in replies} <= {float(n + 1) for n in range(frontends)}
    assert 1 <= computed <= frontends


def sleep_300ms(inputs: list[Any]) -> list[float]:
    """Too slow for a 50 ms SLO."""
    time.sleep(0.3)
    return [float(sum(x)) for x in inputs]


def test_slow_model_answers_default_at_deadline_and_late_answer_is_cached(
    server: ServerHandle,
) -> None:
    deploy(server, "slow", sleep_300ms, slo_us=50_000)
    one = one_frontend(server)
    started = time.monotonic()
    first = one.post("/slow/predict", json={"input": [1.0, 2.0]}).json()
    assert time.monotonic() - started < 0.25
    assert first["default"] is True
    assert first["output"] == -1
    assert first["default_explanation"] == f"{SLO_MISSED} (50 ms)"
    cached = wait_until(
        lambda: (
            (r := one.post("/slow/predict", json={"input": [1.0, 2.0]}).json())["default"] is False
            and r
        ),
        5,
        "the late answer to fill the cache",
    )
    assert cached["output"] == 3.0
    again = one.post("/slow/predict", json={"input": [1.0, 2.0]}).json()
    assert again["default"] is False
    assert metric(server, "clipper_model_cache_hits_total", model="slow") >= 1


def test_queries_expired_in_the_queue_never_reach_the_worker(server: ServerHandle) -> None:
    deploy(server, "expire", sleep_300ms, batch_size=1, slo_us=100_000)
    server.admin.set_cache(False, app_name="expire")
    replies = asyncio.run(
        _predict_many(server, "expire", [{"input": [float(i)]} for i in range(10)])
    )
    assert all(reply["default"] for reply in replies)
    wait_until(
        lambda: metric(server, "clipper_model_dropped_expired_total", model="expire") >= 8,
        5,
        "expired queries to be dropped",
    )
    assert metric(server, "clipper_model_batch_size_sum", model="expire") <= 2


@pytest.mark.parametrize("how", ["body", "header"])
def test_per_request_budget_shortens_the_deadline(server: ServerHandle, how: str) -> None:
    deploy(server, "budget", sleep_300ms, slo_us=5_000_000)
    body: dict[str, Any] = {"input": [float(time.time())]}
    headers = {}
    if how == "body":
        body["latency_slo_micros"] = 50_000
    else:
        headers["Clipper-Timeout-Us"] = "50000"
    started = time.monotonic()
    reply = server.predict("budget", body, headers=headers).json()
    assert time.monotonic() - started < 0.25
    assert reply["default_explanation"] == (
        f"{SLO_MISSED} (50 ms, the request's timeout; the SLO is 5000 ms)"
    )


def test_batch_policy_changes_at_run_time(server: ServerHandle) -> None:
    deploy(server, "policy", batch_size_of_each, batch_size=1, slo_us=60_000_000)
    server.admin.set_cache(False, app_name="policy")
    changed = server.admin_http("set_batch_policy", {"model_name": "policy", "batch_size": 5})
    info = changed.raise_for_status().json()
    assert info["batch_size"] == 5
    replies = asyncio.run(
        _predict_many(server, "policy", [{"input": [float(i)]} for i in range(11)])
    )
    assert max(reply["output"] for reply in replies) == 5


def test_metrics_page_reports_the_query_path(server: ServerHandle) -> None:
    deploy(server, "metered", echo_first)
    one = one_frontend(server)
    one.post("/metered/predict", json={"input": [1.0]})
    one.post("/metered/predict", json={"input": [1.0]})
    assert metric(server, "clipper_app_requests_total", app="metered") == 2
    assert metric(server, "clipper_model_cache_hits_total", model="metered") == 1
    assert metric(server, "clipper_model_replicas_ready", model="metered") == 1
    assert metric(server, "clipper_replica_batches_total", model="metered", replica="0") == 1
