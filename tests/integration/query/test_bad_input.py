"""Bad input to the query and admin APIs: stable JSON errors, and the server keeps serving.

Every error answers `{"error": <kind>, "cause": <text>, "code": <code>}`. After each bad
request the test checks that a normal query still answers correctly, so no test depends on
another's order.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from clipper.http.errors import error_class
from tests.integration.cluster import ServerFactory, ServerHandle, deploy

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 64 * 1024
NO_MODELS = "No connected models found for query"


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


def byte_count(xs: list[bytes]) -> list[int]:
    return [len(x) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    """A server with a small body limit: `m` (doubles), `ints`, `bin` (bytes), `lonely`."""
    handle = module_server("bad-input", max_body_bytes=MAX_BODY_BYTES)
    deploy(handle, "m", feature_sum)
    deploy(handle, "ints", feature_sum, input_type="integers")
    deploy(handle, "bin", byte_count, input_type="bytes")
    handle.admin.add_app("lonely", "doubles", default_output="0.5", latency_slo_micros=100_000)
    return handle


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    """One HTTP client for the module (a new client per request is slow), with the admin
    token (the query API ignores it)."""
    with httpx.Client(timeout=30, headers=server.admin_headers()) as client:
        yield client


def post_raw(http: httpx.Client, url: str, content: bytes, **kwargs: Any) -> httpx.Response:
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return http.post(url, content=content, headers=headers, **kwargs)


def admin(
    http: httpx.Client, server: ServerHandle, operation: str, body: dict[str, Any]
) -> httpx.Response:
    return http.post(f"{server.admin_url}/admin/{operation}", json=body)


def predict(
    http: httpx.Client, server: ServerHandle, app: str, body: dict[str, Any]
) -> httpx.Response:
    return http.post(f"{server.query_url}/{app}/predict", json=body)


def assert_error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    """The response is `status` with the stable JSON error shape; returns the cause."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "cause", "code"}, body
    assert error_class(body["code"]) is not None, body  # a code of the one error table
    assert isinstance(body["error"], str)
    assert isinstance(body["cause"], str)
    assert body["cause"]
    if kind is not None:
        assert body["error"] == kind
    return str(body["cause"])


def assert_still_serving(http: httpx.Client, server: ServerHandle) -> None:
    reply = predict(http, server, "m", {"input": [1.5, 2.5]}).json()
    assert (reply["output"], reply["default"]) == (4.0, False)
    assert http.get(f"{server.admin_url}/admin/ping").text == "PONG"


# -- the query API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "body"),
    [
        pytest.param("m", b'{"input": [1.0,', id="malformed-json"),
        pytest.param("m", b"", id="empty-body"),
        pytest.param("m", b'{"input": [NaN]}', id="nan-is-not-json"),
        pytest.param("m", b"[1.0, 2.0]", id="list-body"),
        pytest.param("m", b'"text"', id="string-body"),
        pytest.param("m", b"null", id="null-body"),
        pytest.param("m", b"{}", id="no-keys"),
        pytest.param("m", b'{"inputs": [1.0]}', id="misspelled-key"),
        pytest.param("m", b'{"input": [1.0, "2"]}', id="string-element"),
        pytest.param("m", b'{"input": [true, false]}', id="bool-elements"),
        pytest.param("m", b'{"input": [[1.0], [2.0]]}', id="nested-list"),
        pytest.param("m", b'{"input": 3.0}', id="scalar-input"),
        pytest.param("m", b'{"input": {"x": 1.0}}', id="object-input"),
        pytest.param("m", b'{"input_batch": "x"}', id="batch-not-a-list"),
        pytest.param("m", b'{"input_batch": []}', id="empty-batch"),
        pytest.param("m", b'{"input_batch": [[1.0], "x"]}', id="bad-batch-item"),
        pytest.param("m", b'{"input": "1.0, 2.0"}', id="doubles-app-sent-a-string"),
        pytest.param("m", b'{"input": ["a", "b"]}', id="doubles-app-sent-strings"),
        pytest.param("m", b'{"input": [1.0], "version": true}', id="bool-version"),
        pytest.param("m", b'{"input": [1.0], "latency_slo_micros": -1}', id="negative-budget"),
        pytest.param("ints", b'{"input": [1.5, 2]}', id="integers-app-sent-floats"),
        pytest.param("ints", b'{"input": [1.0]}', id="integers-app-sent-float-literal"),
        pytest.param("ints", b'{"input": [3000000000]}', id="integer-out-of-32-bit-range"),
        pytest.param("bin", b'{"input": "not base64!"}', id="bad-base64"),
        pytest.param("bin", b'{"input": 12}', id="bytes-app-sent-a-number"),
        pytest.param("bin", b'{"input": ["aGk="]}', id="bytes-app-sent-a-list"),
    ],
)
def test_bad_query_bodies_answer_400_json_error(
    http: httpx.Client, server: ServerHandle, app: str, body: bytes
) -> None:
    response = post_raw(http, f"{server.query_url}/{app}/predict", body)
    assert_error(response, 400, "Json error")
    assert_still_serving(http, server)


def test_a_bad_timeout_header_answers_400(http: httpx.Client, server: ServerHandle) -> None:
    response = post_raw(
        http,
        f"{server.query_url}/m/predict",
        b'{"input": [1.0]}',
        headers={"Clipper-Timeout-Us": "soon"},
    )
    assert_error(response, 400, "Json error")
    assert_still_serving(http, server)


def test_good_inputs_of_each_app_answer(http: httpx.Client, server: ServerHandle) -> None:
    assert predict(http, server, "ints", {"input": [1, 2]}).json()["output"] == 3.0
    encoded = base64.b64encode(b"hello").decode()
    assert predict(http, server, "bin", {"input": encoded}).json()["output"] == 5
    # Ours: JSON integers are fine for a doubles app; a trailing slash is allowed.
    trailing = http.post(f"{server.query_url}/m/predict/", json={"input": [1, 2]})
    assert (trailing.status_code, trailing.json()["output"]) == (200, 3.0)


def test_a_body_over_the_limit_answers_413(http: httpx.Client, server: ServerHandle) -> None:
    numbers = ", ".join(["1.0"] * (MAX_BODY_BYTES // 4))
    body = f'{{"input": [{numbers}]}}'.encode()
    assert len(body) > MAX_BODY_BYTES
    assert_error(post_raw(http, f"{server.query_url}/m/predict", body), 413)
    assert_error(post_raw(http, f"{server.admin_url}/admin/get_all_models", body), 413)
    assert_still_serving(http, server)


def test_a_chunked_body_over_the_limit_answers_413(
    http: httpx.Client, server: ServerHandle
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"input": ['
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"1.0, " * 200
        yield b"1.0]}"

    response = http.post(f"{server.query_url}/m/predict", content=chunks())
    assert_error(response, 413)
    assert_still_serving(http, server)


@pytest.mark.parametrize("app", ["nope", "Not_A_Valid_Name", "x" * 200])
def test_unknown_or_invalid_app_answers_404_json(
    http: httpx.Client, server: ServerHandle, app: str
) -> None:
    response = post_raw(http, f"{server.query_url}/{app}/predict", b'{"input": [1.0]}')
    cause = assert_error(response, 404)
    assert app in cause
    assert_still_serving(http, server)


@pytest.mark.parametrize("version", ["9", 9])
def test_unknown_version_answers_query_processing_error(
    http: httpx.Client, server: ServerHandle, version: str | int
) -> None:
    response = predict(http, server, "m", {"input": [1.0], "version": version})
    # Clipper's `error` and `cause` texts, with the status of every surface (404).
    assert assert_error(response, 404, "Query processing error") == (
        "Requested version: 9 does not exist for model: m"
    )
    assert response.json()["code"] == "UnknownVersion"
    known = predict(http, server, "m", {"input": [1.0, 1.0], "version": "1"}).json()
    assert (known["output"], known["default"]) == (2.0, False)


def test_an_app_without_models_answers_its_default(
    http: httpx.Client, server: ServerHandle
) -> None:
    response = predict(http, server, "lonely", {"input": [1.0]})
    assert response.status_code == 200
    reply = response.json()
    assert isinstance(reply["query_id"], int)
    assert (reply["output"], reply["default"]) == (0.5, True)
    assert reply["default_explanation"] == NO_MODELS
    batch = predict(http, server, "lonely", {"input_batch": [[1.0], [2.0]]}).json()
    assert [reply["default_explanation"] for reply in batch["batch_predictions"]] == [
        NO_MODELS,
        NO_MODELS,
    ]


# -- the admin API ----------------------------------------------------------------------


def _app(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "fresh", "input_type": "doubles", "default_output": "0",
        "latency_slo_micros": 100_000,
    }  # fmt: skip
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("operation", "body", "status", "kind"),
    [
        pytest.param("add_app", _app(input_type="matrices"), 400, "Invalid input type",
                     id="invalid-input-type"),
        pytest.param("add_app", _app(input_type=3), 400, "Json error", id="input-type-not-str"),
        pytest.param("add_app", _app(default_output=None), 400, "Json error",
                     id="missing-default-output"),
        pytest.param("add_app", {"name": "fresh"}, 400, "Json error", id="missing-fields"),
        pytest.param("add_app", _app(latency_slo_micros="fast"), 400, "Json error",
                     id="slo-not-int"),
        pytest.param("add_app", _app(latency_slo_micros=True), 400, "Json error",
                     id="slo-bool"),
        pytest.param("add_app", _app(latency_slo_micros=-5), 400, "Json error",
                     id="slo-negative"),
        pytest.param("add_app", _app(name=5), 400, "Json error", id="name-not-str"),
        pytest.param("add_app", _app(name="Bad_Name"), 400, "Invalid name", id="invalid-name"),
        pytest.param("add_app", _app(name="-dash"), 400, "Invalid name", id="leading-dash"),
        pytest.param("add_app", _app(name="m"), 409, "Already exists", id="duplicate-app"),
        pytest.param("delete_app", {"name": "nope"}, 404, "Not found", id="delete-unknown-app"),
        pytest.param("add_model_links", {"app_name": "nope", "model_names": ["m"]}, 404,
                     "Not found", id="link-unknown-app"),
        pytest.param("add_model_links", {"app_name": "lonely", "model_names": ["nope"]}, 404,
                     "Not found", id="link-unknown-model"),
        pytest.param("add_model_links", {"app_name": "lonely", "model_names": [1]}, 400,
                     "Json error", id="model-names-not-strings"),
        pytest.param("add_model_links", {"app_name": "ints", "model_names": ["m"]}, 409,
                     "Conflict", id="link-other-input-type"),
        pytest.param("delete_model_links", {"app_name": "lonely", "model_names": ["m"]}, 404,
                     "Not found", id="unlink-missing-link"),
        pytest.param("add_model", {"model_name": "fresh", "model_version": "1.0",
                                   "input_type": "doubles", "containerless": True},
                     400, "Invalid name", id="invalid-version"),
        pytest.param("add_model", {"model_name": "fresh", "model_version": "1",
                                   "input_type": "nope", "containerless": True},
                     400, "Invalid input type", id="model-invalid-input-type"),
        pytest.param("add_model", {"model_name": "fresh", "input_type": "doubles"}, 400,
                     "Json error", id="model-missing-version"),
        pytest.param("add_model", {"model_name": "fresh", "model_version": "1",
                                   "input_type": "doubles"},
                     400, "Json error", id="model-without-artifact"),
        pytest.param("add_model", {"model_name": "m", "model_version": "1",
                                   "input_type": "doubles", "containerless": True},
                     409, "Already exists", id="duplicate-version"),
        pytest.param("set_model_version", {"model_name": "nope", "model_version": "1"}, 404,
                     "Not found", id="set-version-unknown-model"),
        pytest.param("set_model_version", {"model_name": "m", "model_version": "7"}, 404,
                     "Not found", id="set-unknown-version"),
        pytest.param("delete_versioned_model", {"model_name": "nope", "model_version": "1"},
                     404, "Not found", id="delete-unknown-model"),
        pytest.param("get_current_model_version", {"model_name": "nope"}, 404, "Not found",
                     id="current-version-unknown-model"),
        pytest.param("set_num_replicas", {"model_name": "m", "num_replicas": -1}, 400,
                     "Json error", id="negative-replicas"),
        pytest.param("set_num_replicas", {"model_name": "m", "num_replicas": "2"}, 400,
                     "Json error", id="replicas-not-int"),
        pytest.param("get_container", {"model_name": "m", "model_version": "1",
                                       "replica_id": "0"},
                     400, "Json error", id="replica-id-not-int"),
        pytest.param("get_all_models", {"verbose": "yes"}, 400, "Json error",
                     id="verbose-not-bool"),
        pytest.param("no_such_operation", {}, 404, "Not found", id="unknown-operation"),
    ],
)  # fmt: skip
def test_bad_admin_requests_answer_json_errors(
    http: httpx.Client,
    server: ServerHandle,
    operation: str,
    body: dict[str, Any],
    status: int,
    kind: str,
) -> None:
    assert_error(admin(http, server, operation, body), status, kind)
    assert admin(http, server, "get_application", {"name": "fresh"}).json() is None
    assert (
        admin(http, server, "get_model", {"model_name": "fresh", "model_version": "1"}).json()
        is None
    )
    assert_still_serving(http, server)


def test_unknown_model_link_names_the_model(http: httpx.Client, server: ServerHandle) -> None:
    response = admin(
        http, server, "add_model_links", {"app_name": "lonely", "model_names": ["ghost"]}
    )
    assert "No model with name" in assert_error(response, 404, "Not found")
    assert admin(http, server, "get_linked_models", {"app_name": "lonely"}).json() == []


@pytest.mark.parametrize("body", [b"{bad", b"[1]", b'"name"', b"null"])
def test_malformed_admin_bodies_answer_json_error(
    http: httpx.Client, server: ServerHandle, body: bytes
) -> None:
    assert_error(post_raw(http, f"{server.admin_url}/admin/add_app", body), 400, "Json error")
    assert_still_serving(http, server)


def test_bad_artifact_uploads_answer_json_errors(http: httpx.Client, server: ServerHandle) -> None:
    url = f"{server.admin_url}/admin/artifacts"
    assert_error(http.put(f"{url}/fresh/1", content=b"not a tar"), 400)
    assert_error(http.put(f"{url}/Bad_Name/1", content=b""), 400, "Invalid name")
    assert_error(http.put(f"{url}/m/1", content=b""), 409, "Conflict")
    assert_still_serving(http, server)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        pytest.param("add_app", _app(latency_slo_micros=2**63), id="add-app-slo"),
        pytest.param("set_num_replicas", {"model_name": "m", "num_replicas": 2**63},
                     id="set-num-replicas"),
        pytest.param("set_batch_policy", {"model_name": "m", "batch_size": 2**63},
                     id="set-batch-policy"),
        pytest.param("add_model", {"model_name": "fresh", "model_version": "1",
                                   "input_type": "doubles", "containerless": True,
                                   "batch_size": 2**63}, id="add-model-batch-size"),
    ],
)  # fmt: skip
def test_huge_integers_in_admin_requests_answer_400_json(
    http: httpx.Client, server: ServerHandle, operation: str, body: dict[str, Any]
) -> None:
    assert_error(admin(http, server, operation, body), 400, "Json error")
    assert_still_serving(http, server)


def test_feedback_endpoint_answers_json_and_rejects_bad_bodies(
    http: httpx.Client, server: ServerHandle
) -> None:
    response = http.post(
        f"{server.query_url}/m/update", json={"uid": 1, "input": [1.0], "label": 1.0}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    url = f"{server.query_url}/m/update"
    for body in (b"{bad", b"[]", b'{"uid": 1}', b'{"uid": 1, "input": ["x"], "label": 1.0}'):
        assert_error(post_raw(http, url, body), 400, "Json error")
    assert_error(post_raw(http, f"{server.query_url}/nope/update", b"{}"), 404)
    assert_still_serving(http, server)


def test_every_query_still_answers_after_bad_input(
    http: httpx.Client, server: ServerHandle
) -> None:
    for body in (b"{bad", b"[]", b'{"input": "x"}'):
        post_raw(http, f"{server.query_url}/m/predict", body)
    admin(http, server, "add_app", _app(input_type="nonsense"))
    assert_still_serving(http, server)
    assert sorted(admin(http, server, "get_all_applications", {}).json()) == [
        "bin",
        "ints",
        "lonely",
        "m",
    ]


def test_get_on_a_predict_route_is_405_naming_post(
    http: httpx.Client, server: ServerHandle
) -> None:
    """Issue 21, item 7: a browser's address bar asks with GET; the answer says to POST."""
    response = http.get(f"{server.query_url}/m/predict")

    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert response.headers["content-type"].startswith("application/json")
    assert "code" in response.json()
