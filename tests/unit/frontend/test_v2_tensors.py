"""Open Inference Protocol tensors over REST: datatypes, JSON and binary bodies."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.exceptions import InvalidInput
from clipper.frontend.oip.datatypes import (
    DATATYPES,
    InferResponse,
    Tensor,
    datatype_of,
    deserialize_bytes,
    serialize_bytes,
)
from clipper.frontend.oip.rest_codec import decode_infer_request, encode_infer_response

NUMERIC = sorted(DATATYPES)


def binary_body(inputs: list[tuple[str, str, list[int], bytes]], **extra: Any) -> tuple[bytes, int]:
    entries = [
        {"name": name, "datatype": datatype, "shape": shape,
         "parameters": {"binary_data_size": len(data)}}
        for name, datatype, shape, data in inputs
    ]  # fmt: skip
    header = orjson.dumps({"inputs": entries, **extra})
    return header + b"".join(data for *_, data in inputs), len(header)


def test_bytes_elements_round_trip() -> None:
    elements = [b"", b"a", "ü".encode(), bytes(300)]

    assert deserialize_bytes(serialize_bytes(elements), 4) == elements


@pytest.mark.parametrize("wire", [b"\x05\x00\x00\x00abc", b"\x01\x00", b"\x01\x00\x00\x00ab"])
def test_malformed_bytes_elements_are_invalid_input(wire: bytes) -> None:
    with pytest.raises(InvalidInput):
        deserialize_bytes(wire, 1)


@pytest.mark.parametrize("datatype", NUMERIC)
def test_every_numeric_datatype_decodes_from_binary(datatype: str) -> None:
    array = np.arange(6).astype(DATATYPES[datatype]).reshape(2, 3)
    body, size = binary_body([("x", datatype, [2, 3], array.tobytes())])

    tensor = decode_infer_request(body, size).inputs[0]

    assert isinstance(tensor.data, np.ndarray)
    assert datatype_of(tensor.data.dtype) == datatype
    np.testing.assert_array_equal(tensor.data, array)


@pytest.mark.parametrize("datatype", NUMERIC)
def test_every_numeric_datatype_decodes_from_json(datatype: str) -> None:
    data = [True, False] if datatype == "BOOL" else [1, 2]
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": datatype, "shape": [2],
                                     "data": data}]})  # fmt: skip

    tensor = decode_infer_request(body, None).inputs[0]

    assert isinstance(tensor.data, np.ndarray)
    assert tensor.data.dtype == DATATYPES[datatype]
    assert tensor.data.tolist() == data


def test_nested_json_data_takes_the_tensor_shape() -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 2],
                                     "data": [[1, 2], [3, 4]]}]})  # fmt: skip

    tensor = decode_infer_request(body, None).inputs[0]

    assert isinstance(tensor.data, np.ndarray)
    assert tensor.data.shape == (2, 2)


def test_binary_numeric_data_is_a_view_of_the_body() -> None:
    body, size = binary_body([("x", "FP32", [4], np.ones(4, np.float32).tobytes())])

    tensor = decode_infer_request(body, size).inputs[0]

    assert isinstance(tensor.data, np.ndarray)
    assert not tensor.data.flags.owndata


def test_mixed_binary_and_json_inputs_take_their_bytes_in_order() -> None:
    texts = serialize_bytes([b"ab", b"c"])
    entries = [
        {"name": "t", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}},
        {"name": "j", "datatype": "INT64", "shape": [1], "data": [5]},
        {"name": "b", "datatype": "UINT8", "shape": [3], "parameters": {"binary_data_size": 3}},
    ]
    header = orjson.dumps({"inputs": entries, "id": "7", "parameters": {"timeout": 9}})

    request = decode_infer_request(header + texts + b"\x01\x02\x03", len(header))

    assert [t.name for t in request.inputs] == ["t", "j", "b"]
    assert request.inputs[0].data == [b"ab", b"c"]
    assert request.inputs[2].data.tolist() == [1, 2, 3]  # type: ignore[union-attr]
    assert (request.id, request.timeout_us) == ("7", 9)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"datatype": "FP32", "shape": [2], "data": [1.0]}, "1 elements for 2"),
        ({"datatype": "INT32", "shape": [1], "data": [1.5]}, "do not fit"),
        ({"datatype": "UINT8", "shape": [1], "data": [300]}, "outside the range"),
        ({"datatype": "BF16", "shape": [1], "data": [1.0]}, "unsupported datatype"),
        ({"datatype": "BYTES", "shape": [1], "data": [1]}, "must be strings"),
        ({"datatype": "FP32", "shape": [-2], "data": []}, "invalid shape"),
        ({"datatype": "FP32", "shape": [1]}, "neither data"),
    ],
)
def test_invalid_json_inputs_are_invalid_input(entry: dict[str, Any], match: str) -> None:
    body = orjson.dumps({"inputs": [{"name": "x", **entry}]})

    with pytest.raises(InvalidInput, match=match):
        decode_infer_request(body, None)


def test_binary_size_not_matching_the_shape_is_invalid_input() -> None:
    body, size = binary_body([("x", "FP64", [2], bytes(8))])

    with pytest.raises(InvalidInput, match="8 bytes of data"):
        decode_infer_request(body, size)


def test_binary_data_left_over_is_invalid_input() -> None:
    body, size = binary_body([("x", "FP64", [1], bytes(8))])

    with pytest.raises(InvalidInput, match="binary data"):
        decode_infer_request(body + b"extra", size)


def test_requested_outputs_and_binary_output_flag() -> None:
    body = orjson.dumps({
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "z"}],
        "parameters": {"binary_data_output": True},
    })  # fmt: skip

    request = decode_infer_request(body, None)

    assert [(o.name, o.binary) for o in request.outputs or []] == [("y", True), ("z", None)]
    assert request.binary_output


def test_shared_memory_is_refused() -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1],
                                     "parameters": {"shared_memory_region": "r"}}]})  # fmt: skip

    with pytest.raises(InvalidInput, match="not supported"):
        decode_infer_request(body, None)


def _response(binary: bool) -> InferResponse:
    outputs = [
        Tensor("y", "FP32", (2,), np.array([1.5, 2.5], np.float32)),
        Tensor("t", "BYTES", (1,), [b"hi"]),
    ]
    return InferResponse("m", "1", outputs, [binary, binary], id="q")


def test_json_response_has_flat_data() -> None:
    header, chunks = encode_infer_response(_response(False))

    body = orjson.loads(header)
    assert chunks == []
    assert body["id"] == "q"
    assert [o["data"] for o in body["outputs"]] == [[1.5, 2.5], ["hi"]]


def test_binary_response_puts_data_after_the_header() -> None:
    header, chunks = encode_infer_response(_response(True))

    outputs = orjson.loads(header)["outputs"]
    assert [o["parameters"]["binary_data_size"] for o in outputs] == [8, 6]
    assert b"".join(bytes(chunk) for chunk in chunks) == (
        np.array([1.5, 2.5], np.float32).tobytes() + serialize_bytes([b"hi"])
    )


def test_non_utf8_bytes_output_needs_binary_data() -> None:
    response = InferResponse("m", "1", [Tensor("t", "BYTES", (1,), [b"\xff"])], [False])

    with pytest.raises(InvalidInput, match="binary_data"):
        encode_infer_response(response)
