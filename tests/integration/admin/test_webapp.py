"""The example web app (examples/webapp) in headless Chromium against a real server.

The page is served by the example's own script on one origin and calls the query API on
another, so every query goes through CORS (a preflight, then the POST).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.browser import browser_for_test, draw_a_one_and_ask, new_page
from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    free_port,
    kill_leftovers,
    wait_until,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def load_digits_example() -> Any:
    """examples/digits/deploy_digits.py as a module (examples are no package)."""
    path = REPO / "examples" / "digits" / "deploy_digits.py"
    spec = importlib.util.spec_from_file_location("deploy_digits", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def webapp_origin() -> Iterator[str]:
    """The example's `serve.py` on a free port; its origin."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "webapp" / "serve.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{origin}/"), 15, "the web app's server")
        yield origin
    finally:
        process.terminate()
        process.wait(10)
        kill_leftovers([process.pid])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def digits_server(module_server: ServerFactory, webapp_origin: str) -> ServerHandle:
    """A server that allows the web app's origin, with the digits app of the tutorial
    (deployed by the example's own code, through `clipper_admin`)."""
    from clipper_admin import ClipperConnection, LocalContainerManager

    example = load_digits_example()
    server = module_server("webapp", cors_allowed_origins=[webapp_origin])
    manager = LocalContainerManager(
        "webapp", server.query_port, server.admin_port, server.rpc_port, server.state_dir
    )
    conn = ClipperConnection(manager)
    conn.connect()
    example.deploy(conn, example.train("logistic")[0], version=1)
    return server


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    with browser_for_test(request) as browser:
        yield browser


def open_app(browser: Any, origin: str, server: ServerHandle) -> Any:
    page = new_page(browser)
    page.goto(f"{origin}/?api={server.query_url}&app=digits")
    return page


def test_a_typed_input_gets_a_prediction_and_its_model_version(
    browser: Any, webapp_origin: str, digits_server: ServerHandle
) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    page = open_app(browser, webapp_origin, digits_server)
    page.fill("#input", ", ".join(str(int(v)) for v in digits.data[0]))
    page.click("#predict")
    page.wait_for_function("document.querySelector('#prediction').textContent !== '?'")
    assert page.text_content("#prediction") == str(digits.target[0])
    assert "Answered by digits:1" in page.text_content("#details")
    assert page.text_content("#error") == ""
    assert page.problems == []


def test_a_drawn_digit_gets_a_prediction_and_feedback_is_accepted(
    browser: Any, webapp_origin: str, digits_server: ServerHandle
) -> None:
    page = open_app(browser, webapp_origin, digits_server)
    draw_a_one_and_ask(page)
    assert len(page.input_value("#input").split(",")) == 64
    assert page.text_content("#error") == ""
    assert page.text_content("#prediction") in [str(digit) for digit in range(10)]
    assert "digits:1" in page.text_content("#details")
    page.click("#labels button:text-is('1')")
    page.wait_for_function("document.querySelector('#feedback-result').textContent !== ''")
    assert "Rewards: digits:1" in page.text_content("#feedback-result")
    assert page.problems == []


def test_an_error_reply_is_shown_from_its_json_body(
    browser: Any, webapp_origin: str, digits_server: ServerHandle
) -> None:
    page = new_page(browser)
    page.goto(f"{webapp_origin}/?api={digits_server.query_url}&app=no-such-app")
    page.fill("#input", ", ".join(["1"] * 64))
    page.click("#predict")
    page.wait_for_function("document.querySelector('#error').textContent !== ''")
    assert "no-such-app" in page.text_content("#error")  # the cause, read from the JSON body
