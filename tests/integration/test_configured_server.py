"""The `configured_server(**settings)` fixture factory: each keyword reaches the server as
its Settings field, and a field that does not exist fails the test at once."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.cluster import ServerFactory

pytestmark = pytest.mark.integration


def test_settings_reach_the_server(configured_server: ServerFactory) -> None:
    server = configured_server(max_body_bytes=2048, cors_allowed_origins=["http://a.test"])

    too_big = httpx.post(f"{server.query_url}/app/predict", content=b"x" * 4096, timeout=10)
    preflight = httpx.options(
        f"{server.query_url}/app/predict",
        headers={"Origin": "http://a.test", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )

    assert (too_big.status_code, too_big.json()["code"]) == (413, "PayloadTooLarge")
    assert preflight.headers["access-control-allow-origin"] == "http://a.test"


def test_a_setting_that_does_not_exist_is_an_error(configured_server: ServerFactory) -> None:
    with pytest.raises(TypeError, match="max_body_byte"):
        configured_server(max_body_byte=1)
