"""Metrics for people who run Prometheus (issue 25, item 4): a real Prometheus (Debian's
package, started here on a free port) scrapes a server under load, and PromQL through its
HTTP API gives each app's request rate and SLO attainment (the share of queries a model
answered within the app's SLO), with the shipped Grafana dashboard's own queries; `/metrics`
passes `promtool check metrics`."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, free_port, wait_until

LOAD_S = 6.0
GRAFANA_DASHBOARD = Path(__file__).resolve().parents[3] / "docs/grafana/clipper-dashboard.json"


def dashboard_query(title_start: str) -> str:
    """The shipped Grafana dashboard's query of the panel whose title starts so, with its
    variables filled in as Grafana would (every app, a 15 s rate window)."""
    panels = json.loads(GRAFANA_DASHBOARD.read_text())["panels"]
    [panel] = [p for p in panels if p["title"].startswith(title_start)]
    expr = str(panel["targets"][0]["expr"])
    return expr.replace("$__rate_interval", "15s").replace('"$app"', '".*"')


ATTAINMENT = dashboard_query("SLO attainment")
REQUEST_RATE = dashboard_query("Queries per second")


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def slow_sum(xs: list[Any]) -> list[float]:
    import time

    time.sleep(0.2)  # past its app's 50 ms SLO: every answer is the default output
    return [float(sum(x)) for x in xs]


@pytest.fixture
def server(configured_server: ServerFactory) -> ServerHandle:
    handle = configured_server("scraped")
    deploy(handle, "fast", feature_sum, slo_us=1_000_000)
    deploy(handle, "slow", slow_sum, slo_us=50_000)
    return handle


@pytest.fixture
def prometheus(server: ServerHandle, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping `server`'s /metrics every second; its HTTP API's address."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: clipper\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.query_port}']}}]\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(address), 30, "Prometheus to be ready")
        yield address
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _ready(address: str) -> bool:
    try:
        return httpx.get(f"{address}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def load(server: ServerHandle, app: str, until: float) -> None:
    with httpx.Client(base_url=server.query_url, timeout=10) as client:
        sent = 0
        while time.monotonic() < until:
            sent += 1  # a new input each time: no answer comes from the prediction cache
            body = {"input": [float(sent), threading.get_ident() % 1000]}
            client.post(f"/{app}/predict", json=body).raise_for_status()


def by_app(prometheus: str, query: str) -> dict[str, float]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()
    assert reply["status"] == "success", reply
    return {r["metric"]["app"]: float(r["value"][1]) for r in reply["data"]["result"]}


def by_model(prometheus: str, query: str) -> dict[str, float]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()
    assert reply["status"] == "success", reply
    return {r["metric"]["model"]: float(r["value"][1]) for r in reply["data"]["result"]}


def test_prometheus_sees_each_apps_rate_and_slo_attainment(
    server: ServerHandle, prometheus: str
) -> None:
    until = time.monotonic() + LOAD_S
    clients = [threading.Thread(target=load, args=(server, app, until)) for app in
               ("fast", "fast", "slow", "slow")]  # fmt: skip
    for client in clients:
        client.start()
    for client in clients:
        client.join(LOAD_S + 30)

    attainment = wait_until(
        lambda: (found := by_app(prometheus, ATTAINMENT)).keys() >= {"fast", "slow"} and found,
        30,
        "Prometheus to have two scrapes of both apps",
    )
    rates = by_app(prometheus, REQUEST_RATE)

    assert attainment["fast"] > 0.99, attainment  # answered by its model, well within 1 s
    assert attainment["slow"] == 0.0, attainment  # every answer the default, at 50 ms
    assert rates["fast"] > 5, rates
    assert rates["slow"] > 1, rates
    slo = by_app(prometheus, "clipper_app_latency_slo_seconds")
    assert slo == {"fast": 1.0, "slow": 0.05}
    delay = by_model(prometheus, dashboard_query("Queue delay against the SLO"))
    assert delay.keys() == {"fast", "slow"}, delay
    assert 0 <= delay["fast"] < 0.1, delay  # a fast model's queries barely wait
    assert 0 <= delay["slow"] < 1, delay  # admission control keeps hopeless ones out


def test_metrics_pass_promtool(server: ServerHandle) -> None:
    server.predict("fast", {"input": [1.0]}).raise_for_status()
    server.predict("slow", {"input": [1.0]}).raise_for_status()
    exposition = httpx.get(f"{server.query_url}/metrics", timeout=10).text

    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=exposition,
                             capture_output=True, text=True, timeout=30)  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'clipper_app_answers_within_slo_total{app="fast"} 1.0' in exposition
    assert 'clipper_app_answers_total{app="slow"} 1.0' in exposition
