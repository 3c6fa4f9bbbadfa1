"""Unmodified tritonclient (HTTP and gRPC) against a real server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.cluster import ServerHandle
from tests.integration.oip.models import MULTI_SIGNATURE

BYTES_OBJECT = np.object_


@pytest.fixture(scope="module")
def http(v2_server: ServerHandle) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(f"127.0.0.1:{v2_server.query_port}")


@pytest.fixture(scope="module")
def grpc(v2_server: ServerHandle) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{v2_server.grpc_port}")


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _http_input(name: str, array: np.ndarray[Any, Any], datatype: str, binary: bool) -> Any:
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    return tensor.set_data_from_numpy(array, binary_data=binary)


def _grpc_input(name: str, array: np.ndarray[Any, Any], datatype: str) -> Any:
    return grpcclient.InferInput(name, list(array.shape), datatype).set_data_from_numpy(array)


def test_health_over_http(http: httpclient.InferenceServerClient) -> None:
    assert http.is_server_live()
    assert http.is_server_ready()
    assert http.is_model_ready("sum")
    assert http.is_model_ready("sum", "1")
    assert not http.is_model_ready("no-such-model")


def test_health_over_grpc(grpc: grpcclient.InferenceServerClient) -> None:
    assert grpc.is_server_live()
    assert grpc.is_server_ready()
    assert grpc.is_model_ready("multi")
    assert not grpc.is_model_ready("no-such-model")


def test_server_metadata(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    assert http.get_server_metadata()["name"] == "clipper"
    metadata = grpc.get_server_metadata(as_json=True)
    assert metadata["name"] == "clipper"
    assert "binary_tensor_data" in metadata["extensions"]


def test_default_model_metadata(http: httpclient.InferenceServerClient) -> None:
    metadata = http.get_model_metadata("sum")
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, -1]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP64", "shape": [-1]}]


def test_declared_model_metadata(grpc: grpcclient.InferenceServerClient) -> None:
    metadata = grpc.get_model_metadata("multi", as_json=True)
    inputs = [
        {"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t["shape"]]}
        for t in metadata["inputs"]
    ]
    assert inputs == MULTI_SIGNATURE["inputs"]
    assert [t["name"] for t in metadata["outputs"]] == ["total", "doubled", "upper"]


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_fp64_rows_over_http(
    http: httpclient.InferenceServerClient, binary_in: bool, binary_out: bool
) -> None:
    rows = np.arange(12, dtype=np.float64).reshape(4, 3) + 0.5
    tensor = _http_input("input", rows, "FP64", binary_in)
    wanted = [httpclient.InferRequestedOutput("output", binary_data=binary_out)]
    result = http.infer("sum", [tensor], outputs=wanted, request_id="r1")
    np.testing.assert_allclose(result.as_numpy("output"), rows.sum(axis=1))
    response = result.get_response()
    assert response["id"] == "r1"
    assert ("data" in response["outputs"][0]) != binary_out


@pytest.mark.parametrize("binary", [True, False])
def test_fp32_over_http(http: httpclient.InferenceServerClient, binary: bool) -> None:
    rows = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    result = http.infer("twice", [_http_input("input", rows, "FP32", binary)])
    output = result.as_numpy("output")
    assert output.dtype == np.float32
    np.testing.assert_array_equal(output, rows * 2)


def test_fp32_over_grpc(grpc: grpcclient.InferenceServerClient) -> None:
    rows = np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2)
    output = grpc.infer("twice", [_grpc_input("input", rows, "FP32")]).as_numpy("output")
    np.testing.assert_array_equal(output, rows * 2)


@pytest.mark.parametrize("binary", [True, False])
def test_large_tensors_over_http_twice_each(
    http: httpclient.InferenceServerClient, binary: bool
) -> None:
    """Bodies over the HTTP server's in-place threshold, sent twice (the second time the
    cache may answer); 4 rows of 512 KiB each."""
    rows = np.random.default_rng(2).random((4, 1 << 17), dtype=np.float32)
    for _ in range(2):
        result = http.infer("twice", [_http_input("input", rows, "FP32", binary)])
        np.testing.assert_array_equal(result.as_numpy("output"), rows * 2)


def test_large_tensors_over_grpc(grpc: grpcclient.InferenceServerClient) -> None:
    rows = np.random.default_rng(3).random((1, 1 << 20), dtype=np.float32)
    for _ in range(2):
        output = grpc.infer("twice", [_grpc_input("input", rows, "FP32")]).as_numpy("output")
        np.testing.assert_array_equal(output, rows * 2)


def test_a_large_clipper_query_body(v2_server: ServerHandle) -> None:
    values = [0.25] * 60_000  # about 360 KB of JSON: received in place
    reply = v2_server.predict("sum", {"input": values})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"] == 15_000.0


def test_fp64_over_grpc_by_version(grpc: grpcclient.InferenceServerClient) -> None:
    rows = np.ones((2, 5), dtype=np.float64)
    result = grpc.infer("sum", [_grpc_input("input", rows, "FP64")], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("output"), [5.0, 5.0])


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_over_http(http: httpclient.InferenceServerClient, binary: bool) -> None:
    texts = np.array([b"hello", "wörld".encode()], dtype=BYTES_OBJECT)
    wanted = [httpclient.InferRequestedOutput("output", binary_data=binary)]
    result = http.infer("shout", [_http_input("input", texts, "BYTES", binary)], outputs=wanted)
    # tritonclient hands JSON BYTES back as str, binary ones as bytes.
    assert [_as_bytes(x) for x in result.as_numpy("output")] == [b"HELLO", "WÖRLD".encode()]


def test_bytes_over_grpc(grpc: grpcclient.InferenceServerClient) -> None:
    texts = np.array([b"a", b"bc", b""], dtype=BYTES_OBJECT)
    output = grpc.infer("shout", [_grpc_input("input", texts, "BYTES")]).as_numpy("output")
    assert list(output) == [b"A", b"BC", b""]


def _multi_inputs() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    a = np.array([[1.0, 2.0], [3.0, 4.5]], dtype=np.float32)
    b = np.array([7, -(2**40)], dtype=np.int64)
    text = np.array([b"x", b"yz"], dtype=BYTES_OBJECT)
    return a, b, text


def _check_multi(result: Any) -> None:
    np.testing.assert_array_equal(result.as_numpy("total"), np.array([3.0, 7.5], np.float32))
    assert result.as_numpy("doubled").dtype == np.int64
    np.testing.assert_array_equal(result.as_numpy("doubled"), [14, -(2**41)])
    assert [_as_bytes(x) for x in result.as_numpy("upper")] == [b"X", b"YZ"]


@pytest.mark.parametrize("binary", [True, False])
def test_several_inputs_and_outputs_over_http(
    http: httpclient.InferenceServerClient, binary: bool
) -> None:
    a, b, text = _multi_inputs()
    inputs = [
        _http_input("a", a, "FP32", binary),
        _http_input("b", b, "INT64", not binary),
        _http_input("text", text, "BYTES", binary),
    ]
    outputs = [
        httpclient.InferRequestedOutput(name, binary_data=binary)
        for name in ("total", "doubled", "upper")
    ]
    _check_multi(http.infer("multi", inputs, outputs=outputs))


def test_several_inputs_and_outputs_over_grpc(grpc: grpcclient.InferenceServerClient) -> None:
    a, b, text = _multi_inputs()
    inputs = [_grpc_input("a", a, "FP32"), _grpc_input("b", b, "INT64"),
              _grpc_input("text", text, "BYTES")]  # fmt: skip
    _check_multi(grpc.infer("multi", inputs))


def test_requested_outputs_only(http: httpclient.InferenceServerClient) -> None:
    a, b, text = _multi_inputs()
    inputs = [_http_input("a", a, "FP32", True), _http_input("b", b, "INT64", True),
              _http_input("text", text, "BYTES", True)]  # fmt: skip
    result = http.infer("multi", inputs, outputs=[httpclient.InferRequestedOutput("doubled")])
    assert [output["name"] for output in result.get_response()["outputs"]] == ["doubled"]


def test_int64_tensor_to_an_integers_signature_mismatch_is_rejected(
    http: httpclient.InferenceServerClient,
) -> None:
    a, b, text = _multi_inputs()
    inputs = [
        _http_input("a", a, "FP32", True),
        _http_input("b", b.astype(np.int32), "INT32", True),
        _http_input("text", text, "BYTES", True),
    ]
    with pytest.raises(InferenceServerException, match="datatype INT32"):
        http.infer("multi", inputs)


def test_app_name_resolves_to_its_linked_model(http: httpclient.InferenceServerClient) -> None:
    assert http.get_model_metadata("front")["name"] == "front"
    rows = np.ones((1, 4), dtype=np.float64)
    result = http.infer("front", [_http_input("input", rows, "FP64", True)])
    assert result.get_response()["model_name"] == "front"
    np.testing.assert_array_equal(result.as_numpy("output"), [4.0])


def test_unknown_model_raises_the_clients_error(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    rows = np.ones((1, 2), dtype=np.float64)
    with pytest.raises(InferenceServerException, match="no-such-model"):
        http.infer("no-such-model", [_http_input("input", rows, "FP64", True)])
    with pytest.raises(InferenceServerException, match="no-such-model"):
        grpc.infer("no-such-model", [_grpc_input("input", rows, "FP64")])
    with pytest.raises(InferenceServerException):
        http.get_model_metadata("sum", "9")
    with pytest.raises(InferenceServerException):
        grpc.get_model_metadata("no-such-model")
