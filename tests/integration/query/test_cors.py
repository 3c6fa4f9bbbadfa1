"""CORS on the query API: preflights, allowed and refused origins, errors a page can read."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy

pytestmark = pytest.mark.integration

PAGE = "http://page.example:8000"


@pytest.fixture(scope="module")
def cors_server(module_server: ServerFactory) -> ServerHandle:
    server = module_server("cors", cors_allowed_origins=[PAGE, "http://other"])
    deploy(server, "hello", lambda xs: [float(sum(x)) for x in xs])
    return server


def preflight(server: ServerHandle, path: str, origin: str) -> httpx.Response:
    return httpx.options(f"{server.query_url}{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }, timeout=10)  # fmt: skip


def test_a_preflight_from_an_allowed_origin_is_answered(cors_server: ServerHandle) -> None:
    response = preflight(cors_server, "/hello/predict", PAGE)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("content-type", "authorization", "clipper-timeout-us"):
        assert header in allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert response.content == b""


def test_a_preflight_from_another_origin_gets_no_permission(cors_server: ServerHandle) -> None:
    response = preflight(cors_server, "/v2/models/hello/infer", "http://evil.example")
    assert response.status_code == 204
    assert "access-control-allow-origin" not in response.headers


def test_answers_and_errors_carry_the_allowed_origin(cors_server: ServerHandle) -> None:
    headers = {"Origin": PAGE}
    ok = cors_server.predict("hello", {"input": [1.0, 2.0]}, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == PAGE
    assert ok.headers["vary"] == "Origin"
    missing = cors_server.predict("nope", {"input": [1.0]}, headers=headers)
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == PAGE
    assert "nope" in missing.json()["cause"]
    v2 = httpx.get(f"{cors_server.query_url}/v2/health/ready", headers=headers, timeout=10)
    assert v2.headers["access-control-allow-origin"] == PAGE


def test_a_request_without_origin_gets_no_cors_headers(cors_server: ServerHandle) -> None:
    response = cors_server.predict("hello", {"input": [1.0, 2.0]})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(server: ServerHandle) -> None:
    response = server.predict("nope", {"input": [1.0]}, headers={"Origin": PAGE})
    assert "access-control-allow-origin" not in response.headers
    refused = preflight(server, "/nope/predict", PAGE)  # OPTIONS: not a method of the route
    assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
    assert "access-control-allow-origin" not in refused.headers


def test_any_origin_with_a_star(configured_server: ServerFactory) -> None:
    server = configured_server("star", cors_allowed_origins=["*"])

    response = preflight(server, "/any/predict", "http://anywhere")

    assert response.headers["access-control-allow-origin"] == "*"
