"""No value changed silently (issue 28, item 11): each conversion between a model's output
and a client's reply is a documented one (non-finite floats, objects with a text of their
own) or a clear error (an object with none, a value beyond FP16, an unknown V2 input, both
`input` and `input_batch`, a transfer coding other than chunked)."""

from __future__ import annotations

import socket
import time
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.cluster import ServerFactory, ServerHandle, deploy


class Opaque:
    """Neither __str__ nor __repr__ of its own: its text would be its address."""


class Labelled:
    def __str__(self) -> str:
        return "label-7"


def non_finite(inputs: list[Any]) -> list[Any]:
    return [[float("nan"), float("inf"), -float("inf"), float(x[0])] for x in inputs]


def opaque(inputs: list[Any]) -> list[Any]:
    return [Opaque() for _ in inputs]


def labelled(inputs: list[Any]) -> list[Any]:
    return [Labelled() for _ in inputs]


def huge(inputs: list[Any]) -> list[Any]:
    return [{"y": float(row["x"][0]) * 1e5} for row in inputs]


HALF = {
    "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 1]}],
    "outputs": [{"name": "y", "datatype": "FP16", "shape": [-1]}],
}


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    server = module_server("conversions")
    deploy(server, "nonfinite", non_finite)
    deploy(server, "opaque", opaque)
    deploy(server, "labelled", labelled)
    deploy(server, "half", huge, input_type="tensors", link=False, signature=HALF)
    for app in ("nonfinite", "opaque", "labelled"):
        server.admin.set_cache(False, app_name=app)
    return server


def _rows(module: Any, name: str = "input") -> Any:
    tensor = module.InferInput(name, [1, 1], "FP64")
    tensor.set_data_from_numpy(np.array([[float(time.time() % 1000)]]))
    return tensor


def test_non_finite_floats_reach_every_client_as_those_floats(server: ServerHandle) -> None:
    reply = server.predict("nonfinite", {"input": [2.5]}).json()
    assert (reply["default"], reply["output"]) == (False, ["NaN", "Infinity", "-Infinity", 2.5])
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    for binary in (False, True):
        wanted = [httpclient.InferRequestedOutput("output", binary_data=binary)]
        got = http.infer("nonfinite", [_rows(httpclient)], outputs=wanted).as_numpy("output")
        np.testing.assert_array_equal(got[0, :3], [np.nan, np.inf, -np.inf])
    got = grpc.infer("nonfinite", [_rows(grpcclient)]).as_numpy("output")
    np.testing.assert_array_equal(got[0, :3], [np.nan, np.inf, -np.inf])


def test_an_output_with_no_text_of_its_own_is_a_clear_model_error(server: ServerHandle) -> None:
    reply = server.predict("opaque", {"input": [1.0]}).json()
    assert reply["default"] is True
    assert reply["default_explanation"].startswith(
        "Model error: UnserialisableOutput: TypeError: an output of type Opaque has no JSON form"
    ), reply
    assert "0x" not in reply["default_explanation"]


def test_an_output_with_a_text_of_its_own_is_that_text(server: ServerHandle) -> None:
    reply = server.predict("labelled", {"input": [1.0]}).json()
    assert (reply["default"], reply["output"]) == (False, "label-7")


def test_a_value_beyond_fp16_is_an_error_not_infinity(server: ServerHandle) -> None:
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    with pytest.raises(InferenceServerException, match="beyond FP16's range"):
        http.infer("half", [_rows(httpclient, "x")])
    tensor = httpclient.InferInput("x", [1, 1], "FP64")
    tensor.set_data_from_numpy(np.array([[0.16384]]))  # exactly 16384 in FP16
    assert http.infer("half", [tensor]).as_numpy("y").tolist() == [16384.0]


def test_an_unknown_v2_input_name_is_refused(server: ServerHandle) -> None:
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    with pytest.raises(InferenceServerException, match="unknown input 'INPUT0'") as raised:
        http.infer("nonfinite", [_rows(httpclient, "INPUT0")])
    assert raised.value.status() == "400"


def test_input_and_input_batch_together_are_refused(server: ServerHandle) -> None:
    answer = server.predict("labelled", {"input": [1.0], "input_batch": [[2.0]]})
    assert answer.status_code == 400
    assert "either 'input' or 'input_batch'" in answer.json()["cause"]


def test_a_gzip_transfer_coding_gets_501_on_the_query_port(server: ServerHandle) -> None:
    request = (
        b"POST /labelled/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.query_port), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 501"), answer
    assert b"UnsupportedTransferCoding" in answer


def test_a_gzip_transfer_coding_is_refused_on_the_admin_port(server: ServerHandle) -> None:
    """uvicorn takes the chunked framing off and hands the handler gzip bytes: refused as
    malformed JSON, never read as something else."""
    [(name, value)] = server.admin_headers().items()
    request = (
        b"POST /admin/get_all_applications HTTP/1.1\r\nHost: x\r\n%s: %s\r\n"
        b"Transfer-Encoding: gzip, chunked\r\nContent-Type: application/json\r\n\r\n"
        b"a\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\r\n0\r\n\r\n"
    ) % (name.encode(), value.encode())
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=10) as sock:
        sock.sendall(request)
        answer = _whole_reply(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b'"code":"InvalidRequest"' in answer or b'"code":"InvalidInput"' in answer, answer


def _whole_reply(sock: socket.socket) -> bytes:
    """One HTTP reply with a content-length, read whole (its head and body may come in
    separate segments)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536) or b"\r\n\r\n"
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
