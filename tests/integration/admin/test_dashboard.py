"""The web dashboard in headless Chromium against a real server, and its JSON endpoints."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.artifacts.python import closure_artifact
from clipper.security import read_admin_token
from tests.integration.browser import browser_for_test, new_page
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

pytestmark = pytest.mark.integration

GRAFANA_DASHBOARD = Path(__file__).resolve().parents[3] / "docs/grafana/clipper-dashboard.json"
SAMPLE_INTERVAL_S = 0.2  # the server's history takes a summary this often


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    """A server with app `hello` and two versions of model `hello` (2 is current), keeping a
    summary every SAMPLE_INTERVAL_S for the dashboard's history."""
    handle = module_server("dash", dashboard_sample_interval_s=SAMPLE_INTERVAL_S)
    deploy(handle, "hello", lambda xs: [float(sum(x)) for x in xs])
    deploy(handle, "hello", lambda xs: [2.0 * sum(x) for x in xs], version="2", link=False)
    return handle


@pytest.fixture
def dashboard(request: pytest.FixtureRequest, server: ServerHandle) -> Iterator[Any]:
    """The dashboard page, signed in through the URL fragment, polling every 0.5 s."""
    with browser_for_test(request) as browser:
        page = new_page(browser)
        token = read_admin_token(server.state_dir) or ""
        page.goto(f"{server.admin_url}/?refresh=0.5&window=60#token={token}")
        page.wait_for_selector("#connection.ok")
        yield page


def test_lists_apps_and_models_and_drops_the_token_from_the_address(
    dashboard: Any, server: ServerHandle
) -> None:
    app_row = dashboard.wait_for_selector("#apps tr[data-app=hello]")
    assert "doubles" in app_row.text_content()
    model_row = dashboard.locator("#models tr[data-model=hello]")
    assert model_row.locator(".current-version").text_content() == "2"
    assert "1 / 1 ready" in model_row.text_content()
    assert "token=" not in dashboard.url
    assert dashboard.problems == []


def test_charts_show_traffic_after_queries(dashboard: Any, server: ServerHandle) -> None:
    stop = threading.Event()

    def send_queries() -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                client.post(f"{server.query_url}/hello/predict", json={"input": [1.0, i % 7]})

    sender = threading.Thread(target=send_queries)
    sender.start()
    try:
        for chart in ("qps", "latency", "traffic", "batch", "cache"):
            dashboard.wait_for_function(
                f"Number(document.querySelector('[data-chart={chart}]').dataset.max) > 0"
            )
    finally:
        stop.set()
        sender.join(10)
    legend = dashboard.text_content("[data-chart=qps] .legend")
    assert re.search(r"hello: [1-9]", legend), legend
    assert dashboard.problems == []


def test_rollback_clicked_on_the_dashboard_changes_the_current_version(
    dashboard: Any, server: ServerHandle
) -> None:
    row = dashboard.locator("#models tr[data-model=hello]")
    assert row.locator(".current-version").text_content() == "2"
    row.locator("button.rollback").click()
    dashboard.wait_for_selector("#message:has-text('rolled back from version 2 to 1')")
    dashboard.wait_for_function(
        "document.querySelector('#models tr[data-model=hello] .current-version')"
        ".textContent === '1'"
    )
    assert server.admin.get_current_model_version("hello") == "1"
    server.admin.set_model_version("hello", "2")


@pytest.fixture
def rollout_server(configured_server: ServerFactory) -> ServerHandle:
    """A server of its own (the module's serves charts that count its apps)."""
    return configured_server("dash-rollout")


def test_a_rollout_shows_on_its_model_row_and_is_paused_and_aborted_by_its_buttons(
    request: pytest.FixtureRequest, rollout_server: ServerHandle
) -> None:
    server = rollout_server
    deploy(server, "canary", lambda xs: [1.0 for _ in xs])
    server.admin.upload_artifact("canary", "2", closure_artifact(lambda xs: [2.0 for _ in xs]))
    steps = [{"share": 0.5, "duration_s": 60}, 1.0]
    server.admin.add_model("canary", "2", "doubles", num_replicas=1,
                           rollout={"shadow_s": 0, "steps": steps})  # fmt: skip
    with browser_for_test(request) as browser:
        dashboard = new_page(browser)
        token = read_admin_token(server.state_dir) or ""
        dashboard.goto(f"{server.admin_url}/?refresh=0.5&window=60#token={token}")
        dashboard.wait_for_selector("#connection.ok")
        _click_pause_and_abort(dashboard, server)


def _click_pause_and_abort(dashboard: Any, server: ServerHandle) -> None:
    cell = dashboard.locator("#models tr[data-model=canary] td.rollout")
    cell.locator(".rollout-step:has-text('1 → 2: step 1 of 2 (50%)')").wait_for()
    cell.locator("[data-check=max_error_rate]").wait_for()
    cell.locator("button.rollout-pause").click()
    dashboard.wait_for_selector("#message:has-text('canary: rollout paused')")
    cell.locator(".rollout-step:has-text('paused')").wait_for()
    assert (server.admin.get_rollout("canary") or {})["paused"] is True
    cell.locator("button.rollout-abort").click()
    dashboard.wait_for_selector("#message:has-text('canary: rollout aborted')")
    dashboard.wait_for_function(
        "document.querySelector('#models tr[data-model=canary] td.rollout').textContent === '-'"
    )
    status = server.admin.get_rollout("canary") or {}
    assert (status["state"], status["reason"]) == ("aborted", "aborted by an operator")
    assert server.admin.get_current_model_version("canary") == "1"
    assert dashboard.problems == []


def test_static_files_are_public_and_the_summary_counts_queries(server: ServerHandle) -> None:
    page = httpx.get(f"{server.admin_url}/", timeout=10)
    assert page.status_code == 200
    assert "<title>Clipper dashboard</title>" in page.text
    script = httpx.get(f"{server.admin_url}/dashboard/dashboard.js", timeout=10)
    assert script.status_code == 200
    server.predict("hello", {"input": [1.0, 2.0]}).raise_for_status()
    auth = server.admin_headers()
    summary = httpx.get(f"{server.admin_url}/admin/metrics_summary", headers=auth).json()
    assert summary["apps"]["hello"]["requests"] >= 1
    assert summary["apps"]["hello"]["latency_p50_s"] > 0
    assert summary["models"]["hello:2"]["replicas_ready"] == 1
    errors = httpx.get(f"{server.admin_url}/admin/recent_errors", headers=auth).json()
    assert errors == {"replicas": [], "log": errors["log"]}


def test_grafana_dashboard_uses_only_metrics_the_server_exports(server: ServerHandle) -> None:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 8
    exported = _exported_names(httpx.get(f"{server.query_url}/metrics", timeout=10).text)
    used = {name for expr in expressions for name in re.findall(r"\bclipper_[a-z_]+", expr)}
    assert used, expressions
    assert used <= exported, used - exported


def _exported_names(text: str) -> set[str]:
    """Every sample name /metrics can hold, from its `# TYPE` lines (families that have no
    sample yet included)."""
    suffixes = {
        "counter": [""],  # the TYPE line names a counter with its _total
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "gauge": [""],
    }
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            names.update(family + suffix for suffix in suffixes.get(kind, [""]))
    return names


def test_history_returns_the_summaries_taken_with_their_query_counts(
    server: ServerHandle,
) -> None:
    before = _history(server)["samples"][-1]["time"]
    for i in range(5):
        server.predict("hello", {"input": [3.0, float(i)]}).raise_for_status()
    sent = time.time()
    history = wait_until(
        lambda: (
            (answer := _history(server))["samples"][-1]["time"] > sent + SAMPLE_INTERVAL_S
            and answer
        ),
        20,
        "two samples taken after the queries",
    )
    assert history["interval_s"] == SAMPLE_INTERVAL_S
    times = [sample["time"] for sample in history["samples"]]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert min(b - a for a, b in itertools.pairwise(times)) > SAMPLE_INTERVAL_S / 2
    earlier = [s for s in history["samples"] if s["time"] <= before]
    counts = [s["apps"]["hello"]["requests"] for s in (earlier[-1], history["samples"][-1])]
    assert counts[1] - counts[0] >= 5, counts
    assert httpx.get(f"{server.admin_url}/admin/metrics_history", timeout=10).status_code == 401


def test_charts_are_full_when_the_page_opens(
    request: pytest.FixtureRequest, server: ServerHandle
) -> None:
    _send_queries_for(server, 8 * SAMPLE_INTERVAL_S)
    done = time.time()
    wait_until(lambda: _history(server)["samples"][-1]["time"] > done, 20, "a sample after")
    with browser_for_test(request) as browser:
        page = new_page(browser)
        token = read_admin_token(server.state_dir) or ""
        # One poll only (refresh every 10 min): every point but the last is the history's.
        page.goto(f"{server.admin_url}/?refresh=600&window=60#token={token}")
        page.wait_for_selector("#connection.ok")
        page.wait_for_function("document.querySelector('[data-chart=cache]').dataset.points")
        charts = page.evaluate(_READ_CHARTS)
        replicas = page.text_content("#models tr[data-model=hello] .replica-counts")
        assert page.problems == []
    assert int(charts["qps"]["points"]) >= 6, charts
    assert float(charts["qps"]["max"]) > 0, charts
    assert int(charts["latency"]["points"]) >= 4, charts
    assert charts["cache"]["top"] == "100%", charts  # not 200% (the nice ceiling of 110)
    assert float(charts["cache"]["max"]) > 50, charts
    for name, chart in charts.items():
        colors = json.loads(chart["colors"])
        assert len(set(colors)) == len(colors), (name, colors)
    assert len(json.loads(charts["latency"]["colors"])) == 2  # p50 and p99, two colours
    assert len(json.loads(charts["traffic"]["colors"])) == 2  # hello:1 and hello:2
    assert "hello:2 (current) — 1 / 1 ready" in replicas, replicas
    assert "hello:1 — " in replicas, replicas


_READ_CHARTS = """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')]
    .map((figure) => [figure.dataset.chart, { ...figure.dataset }]))"""


def _history(server: ServerHandle) -> dict[str, Any]:
    answer = httpx.get(
        f"{server.admin_url}/admin/metrics_history", headers=server.admin_headers(), timeout=10
    )
    answer.raise_for_status()
    history: dict[str, Any] = answer.json()
    return history


def _send_queries_for(server: ServerHandle, seconds: float) -> None:
    """Queries one after the other for `seconds`, from a few repeated inputs (cache hits)."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        for i in itertools.count():
            if time.monotonic() > deadline:
                return
            client.post(f"{server.query_url}/hello/predict", json={"input": [1.0, i % 7]})
