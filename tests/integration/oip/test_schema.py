"""Every response of the query API matches the served OpenAPI document (and so the
Open Inference Protocol's JSON shapes): declared status, content type and schema."""

from __future__ import annotations

import re
from typing import Any

import httpx
import hypothesis
import jsonschema
import numpy as np
import orjson
import pytest
import schemathesis

from clipper.frontend.oip.openapi import openapi_document
from tests.integration.cluster import ServerHandle

FP64_ROWS = {"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3, 4]}
BINARY = np.ones((1, 3), np.float64).tobytes()
BINARY_HEADER = orjson.dumps({
    "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 3],
                "parameters": {"binary_data_size": len(BINARY)}}],
    "parameters": {"binary_data_output": True},
})  # fmt: skip

# (method, path, JSON body or raw bytes, headers, expected status)
REQUESTS: list[tuple[str, str, Any, dict[str, str], int]] = [
    ("GET", "/v2", None, {}, 200),
    ("GET", "/v2/health/live", None, {}, 200),
    ("GET", "/v2/health/ready", None, {}, 200),
    ("POST", "/v2/health/ready", None, {}, 405),
    ("GET", "/v2/models/sum", None, {}, 200),
    ("GET", "/v2/models/multi/versions/1", None, {}, 200),
    ("GET", "/v2/models/front", None, {}, 200),
    ("GET", "/v2/models/no-such-model", None, {}, 404),
    ("GET", "/v2/models/sum/versions/9", None, {}, 404),
    ("GET", "/v2/models/sum/ready", None, {}, 200),
    ("GET", "/v2/models/sum/versions/1/ready", None, {}, 200),
    ("GET", "/v2/models/no-such-model/ready", None, {}, 404),
    ("POST", "/v2/models/sum/infer", {"id": "a", "inputs": [FP64_ROWS]}, {}, 200),
    ("POST", "/v2/models/sum/versions/1/infer", {"inputs": [FP64_ROWS]}, {}, 200),
    ("POST", "/v2/models/sum/infer", BINARY_HEADER + BINARY,
     {"Inference-Header-Content-Length": str(len(BINARY_HEADER))}, 200),
    ("POST", "/v2/models/sum/infer", b"{not json", {}, 400),
    ("POST", "/v2/models/sum/infer", {"inputs": [{**FP64_ROWS, "datatype": "BF16"}]}, {}, 400),
    ("POST", "/v2/models/multi/infer", {"inputs": [FP64_ROWS]}, {}, 400),
    ("POST", "/v2/models/no-such-model/infer", {"inputs": [FP64_ROWS]}, {}, 404),
    ("GET", "/v2/models/sum/infer", None, {}, 405),
    ("POST", "/sum/predict", {"input": [1.0, 2.0]}, {}, 200),
    ("POST", "/sum/predict", {"input_batch": [[1.0], [2.0]]}, {}, 200),
    ("POST", "/sum/predict", {"input": "x"}, {}, 400),
    ("POST", "/no-such-app/predict", {"input": [1.0]}, {}, 404),
    ("GET", "/sum/ready", None, {}, 200),
    ("GET", "/healthz", None, {}, 200),
    ("GET", "/readyz", None, {}, 200),
    ("GET", "/metrics", None, {}, 200),
    ("GET", "/openapi.json", None, {}, 200),
]  # fmt: skip


@pytest.fixture(scope="module")
def document(v2_server: ServerHandle) -> dict[str, Any]:
    response = httpx.get(f"{v2_server.query_url}/openapi.json", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def operation_for(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The document's operation whose path template matches `path` (the most specific)."""
    matches = []
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            matches.append((template.count("{"), item[method.lower()]))
    assert matches, f"{method} {path} is not in the OpenAPI document"
    return min(matches, key=lambda match: match[0])[1]


def check(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    if response.status_code == 405:  # a documented path asked with another method
        operation_for(document, "POST" if method == "GET" else "GET", path)
        error = {"$ref": "#/components/schemas/error", "components": document["components"]}
        jsonschema.validate(response.json(), error)
        return
    declared = operation_for(document, method, path)["responses"]
    assert str(response.status_code) in declared, f"{method} {path}: {response.status_code}"
    content = declared[str(response.status_code)].get("content", {})
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, f"{method} {path}: undeclared {media_type}"
    schema = content[media_type]["schema"]
    if media_type == "application/octet-stream":
        size = int(response.headers["inference-header-content-length"])
        body, schema = orjson.loads(response.content[:size]), content["application/json"]["schema"]
    elif media_type == "application/json":
        body = response.json()
    else:
        return
    jsonschema.validate(body, {**schema, "components": document["components"]})


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), REQUESTS)
def test_response_matches_the_document(
    v2_server: ServerHandle,
    document: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    raw = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    response = httpx.request(
        method, f"{v2_server.query_url}{path}", content=raw, headers=headers, timeout=30
    )

    assert response.status_code == status, response.text
    check(document, method, path, response)


def test_errors_are_the_protocols_error_object(v2_server: ServerHandle) -> None:
    response = httpx.get(f"{v2_server.query_url}/v2/models/no-such-model", timeout=10)

    body = response.json()
    assert set(body) == {"error", "cause", "code"}  # the protocol's `error`, Clipper's others
    assert (body["code"], response.status_code) == ("ModelNotFound", 404)


# -- fuzzing: schemathesis against the served document, bounded in examples -----------------

EXAMPLES_PER_OPERATION = 25
# The served document equals this one (test_the_served_document_is_the_fuzzed_one); loading it
# here lets schemathesis parametrize at collection.
fuzzed_schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_served_document_is_the_fuzzed_one(document: dict[str, Any]) -> None:
    assert document == openapi_document()


@fuzzed_schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_fuzzed_queries_get_no_server_error(case: Any, v2_server: ServerHandle) -> None:
    response = case.call(base_url=v2_server.query_url, timeout=30)

    # A model's own failure would be a 5xx by design; the fuzzed inputs never reach one
    # that fails (the apps here sum numbers), so any 5xx is the server's.
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)


def test_the_server_survived_the_fuzzing(v2_server: ServerHandle) -> None:
    assert httpx.get(f"{v2_server.query_url}/healthz", timeout=10).status_code == 200
    response = httpx.post(f"{v2_server.query_url}/sum/predict", json={"input": [1.0, 2.0]})
    assert response.json()["output"] == 3.0
