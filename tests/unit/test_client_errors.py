"""AdminClient and QueryClient: requests sent, and errors translated into Clipper's tree."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from clipper.client import AdminClient, QueryClient, ServerUnreachable
from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.http.errors import ERROR_TABLE, ErrorRow, error_body

Handler = Callable[[httpx.Request], httpx.Response]


def _answer(status: int, body: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def _admin(handler: Handler) -> AdminClient:
    return AdminClient(transport=httpx.MockTransport(handler))


def _query(handler: Handler) -> QueryClient:
    return QueryClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda row: row.code)
def test_admin_errors_raise_the_class_their_code_names(row: ErrorRow) -> None:
    body = orjson.loads(error_body(row.exception("what went wrong")))
    admin = _admin(_answer(row.http_status, body))
    with admin, pytest.raises(row.exception) as raised:
        admin.get_all_models()

    assert type(raised.value) is row.exception
    assert str(raised.value) == "what went wrong"


@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda row: row.code)
def test_query_errors_raise_the_class_their_code_names(row: ErrorRow) -> None:
    body = orjson.loads(error_body(row.exception("what went wrong")))
    with _query(_answer(row.http_status, body)) as client, pytest.raises(row.exception) as raised:
        client.predict("x", input=[1.0])

    assert type(raised.value) is row.exception


def test_an_unknown_code_raises_the_base_class_with_the_cause() -> None:
    admin = _admin(_answer(418, {"error": "Teapot", "cause": "short and stout", "code": "Tea"}))
    with admin, pytest.raises(ClipperError) as raised:
        admin.get_all_models()

    assert type(raised.value) is ClipperError
    assert str(raised.value) == "short and stout"


def test_plain_text_error_keeps_status_and_text() -> None:
    admin = _admin(lambda request: httpx.Response(400, text="bad things"))
    with admin, pytest.raises(ClipperError, match="HTTP 400: bad things"):
        admin.delete_app("a")


def test_connection_failure_is_server_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with _admin(refuse) as admin, pytest.raises(ServerUnreachable, match="Connection refused"):
        admin.ping()


def test_add_model_sends_stringified_version() -> None:
    sent: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"model_name": "m", "model_version": "1"})

    with _admin(record) as admin:
        admin.add_model("m", 1, "doubles", containerless=True, num_replicas=0)

    assert _model_fields(sent[0]) == {
        "model_name": "m",
        "model_version": "1",
        "input_type": "doubles",
        "containerless": True,
        "num_replicas": 0,
    }


def test_add_model_without_num_replicas_leaves_the_count_to_the_server() -> None:
    sent: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"model_name": "m", "model_version": "2"})

    with _admin(record) as admin:
        admin.add_model("m", 2, "doubles")
        admin.add_model("m", 3, "doubles", num_replicas=1)

    assert "num_replicas" not in sent[0]
    assert sent[1]["num_replicas"] == 1


def _model_fields(body: dict[str, Any]) -> dict[str, Any]:
    keys = ("model_name", "model_version", "input_type", "containerless", "num_replicas")
    return {key: body[key] for key in keys}


def test_upload_artifact_puts_the_archive() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"model_data_path": "/state/artifacts/m/2"})

    with _admin(record) as admin:
        path = admin.upload_artifact("m", 2, b"\x1f\x8bdata")

    assert path == "/state/artifacts/m/2"
    assert (seen[0].method, seen[0].url.path) == ("PUT", "/admin/artifacts/m/2")
    assert seen[0].headers["content-type"] == "application/gzip"


def test_unknown_application_returns_none() -> None:
    null = httpx.Response(200, content=b"null", headers={"content-type": "application/json"})
    with _admin(lambda request: null) as admin:
        assert admin.get_application("nope") is None


def test_predict_encodes_numpy_and_bytes() -> None:
    sent: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"batch_predictions": []})

    with _query(record) as client:
        client.predict("app", input_batch=[np.array([1.5, 2.0]), b"\x00\x01"], version=3)

    assert sent[0] == {"input_batch": [[1.5, 2.0], "AAE="], "version": "3"}


def test_predict_needs_exactly_one_input_kind() -> None:
    with _query(_answer(200, {})) as client, pytest.raises(InvalidInput):
        client.predict("app", input=[1], input_batch=[[1]])
