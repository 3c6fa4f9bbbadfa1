"""Scale to zero through real processes: a version autoscaled with `min_replicas` 0 and a
2 s `scale_to_zero_after_s` gives up its replica once idle, and the next query starts one;
answered by the model when the cold start fits in its SLO, else by the default saying the
model was cold. The count stays at zero across a restart until a query comes."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from clipper.security import read_admin_token
from tests.integration.browser import browser_for_test, new_page
from tests.integration.cluster import ServerHandle, deploy, wait_until

TO_ZERO = {
    "min_replicas": 0, "max_replicas": 2, "scale_to_zero_after_s": 2.0,
    "upscale_window_s": 1.0, "downscale_delay_s": 1.0,
}  # fmt: skip


def double(inputs: list[Any]) -> list[float]:
    return [2 * float(x[0]) for x in inputs]


def info(server: ServerHandle) -> dict[str, Any]:
    found = server.admin.get_model("cold", "1")
    assert found is not None
    return found


def autoscaled(server: ServerHandle) -> list[dict[str, Any]]:
    return [e["detail"] for e in server.admin.get_events(limit=500) if e["kind"] == "autoscaled"]


def query(server: ServerHandle, value: float) -> dict[str, Any]:
    reply = httpx.post(f"{server.query_url}/cold/predict", json={"input": [value]}, timeout=20)
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


def clipper(server: ServerHandle, *args: str) -> str:
    command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def dashboard_models(request: pytest.FixtureRequest, server: ServerHandle) -> str:
    """The replica counts of model `cold` in the dashboard's model table, as shown."""
    with browser_for_test(request) as browser:
        page = new_page(browser)
        token = read_admin_token(server.state_dir) or ""
        page.goto(f"{server.admin_url}/?refresh=600#token={token}")
        page.wait_for_selector("#models tr[data-model=cold] .replica-counts")
        counts = str(page.text_content("#models tr[data-model=cold] .replica-counts"))
        header = str(page.text_content("#cluster"))
        assert page.problems == []
    assert "1 cold" in header, header
    return counts


def wait_cold(server: ServerHandle) -> None:
    wait_until(lambda: info(server)["num_replicas"] == 0, 15, "scaled to zero once idle")
    wait_until(lambda: info(server)["ready_replicas"] == 0, 15, "its replica stopped")


def test_an_idle_version_scales_to_zero_and_a_burst_wakes_it(
    configured_server: Any, request: pytest.FixtureRequest
) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    deploy(server, "cold", double, slo_us=10_000_000, autoscaling=TO_ZERO)
    assert info(server)["cold"] is False
    wait_cold(server)
    [to_zero] = [e for e in autoscaled(server) if e["to"] == 0]
    assert to_zero["reason"] == (
        "scaled cold:1 from 1 to 0: idle for 2 s (no query; the next one starts a replica)"
    )
    assert info(server)["cold"] is True
    assert server.admin.status()["cold"] == ["cold:1"]
    [row] = [line.split() for line in clipper(server, "models").splitlines()[2:]]
    assert row[:5] == ["cold", "1", "doubles", "yes", "0"]
    assert row[5] == "(cold)"
    status = dict(line.split(None, 1) for line in clipper(server, "status").splitlines()[:20]
                  if " " in line)  # fmt: skip
    assert status["cold"] == "cold:1"
    assert "cold (the next query starts a replica)" in dashboard_models(request, server)

    with ThreadPoolExecutor(8) as pool:  # the first wakes it, the others arrive meanwhile
        answers = list(pool.map(lambda x: query(server, float(x)), range(8)))

    assert [a["default"] for a in answers] == [False] * 8, answers
    assert [a["output"] for a in answers] == [2.0 * x for x in range(8)]
    [woke] = [e for e in autoscaled(server) if e["from"] == 0]
    assert woke["to"] == 1
    assert woke["reason"] == "scaled cold:1 from 0 to 1: a query arrived while it was cold"
    assert info(server)["cold"] is False
    assert server.admin.status()["cold"] == []


def test_a_cold_start_past_the_slo_gives_the_cold_default_and_survives_a_restart(
    configured_server: Any,
) -> None:
    server = configured_server(autoscaler_interval_s=0.25)
    deploy(server, "cold", double, slo_us=10_000_000, autoscaling=TO_ZERO)
    server.admin.update_app("cold", latency_slo_micros=50_000)  # shorter than a cold start
    wait_cold(server)

    server.stop()
    server = configured_server.restart(server)
    wait_until(lambda: metric_seen(server), 10, "the autoscaler to look at cold:1")
    assert (info(server)["num_replicas"], info(server)["cold"]) == (0, True)

    first = query(server, 1.0)
    assert first["default"] is True
    assert first["default_explanation"] == (
        "Model was cold: cold:1 was scaled to zero; a replica is starting"
    )
    server.admin.wait_model_ready("cold", "1", timeout_s=20)
    wait_until(lambda: not query(server, 2.0)["default"], 10, "an answer from the model")
    later = query(server, 3.0)
    assert (later["output"], later["default"]) == (6.0, False)


def metric_seen(server: ServerHandle) -> bool:
    """The autoscaler exported the cold version's count (0) after the restart."""
    text = httpx.get(f"{server.query_url}/metrics", timeout=10).text
    return 'clipper_autoscaler_current_replicas{model="cold",version="1"} 0' in text
