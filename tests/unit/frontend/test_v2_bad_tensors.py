"""Tensors no array can hold are clear 400s, not 500s (issue 28, item 10): too many
dimensions, a dimension past int32 (even beside a 0), integers out of their type's range."""

from __future__ import annotations

import orjson
import pytest

from clipper.core.exceptions import InvalidInput
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc_server import decode_infer_request as decode_grpc
from clipper.frontend.oip.rest_codec import decode_infer_request as decode_rest


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([1] * 65, "65 dimensions, at most 32"),
        ([1, 0, 9223372036854775807], "dimensions are integers in"),
        ([1, -1], "dimensions are integers >= 0"),
    ],
)
def test_impossible_shapes_are_invalid_input(shape: list[int], message: str) -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": shape, "data": []}]})

    with pytest.raises(InvalidInput, match=message):
        decode_rest(body, None)


@pytest.mark.parametrize(
    ("datatype", "field", "values"),
    [
        ("INT8", "int_contents", [300]),
        ("INT8", "int_contents", [-129]),
        ("UINT8", "uint_contents", [256]),
        ("INT16", "int_contents", [70000]),
        ("UINT16", "uint_contents", [65536]),
    ],
)
def test_grpc_integers_out_of_their_types_range_are_invalid_input(
    datatype: str, field: str, values: list[int]
) -> None:
    message = pb.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="x", datatype=datatype, shape=[len(values)])
    getattr(tensor.contents, field).extend(values)

    with pytest.raises(InvalidInput, match="values must lie in"):
        decode_grpc(message)


def test_grpc_integers_at_their_types_bounds_decode() -> None:
    message = pb.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="x", datatype="INT8", shape=[2])
    tensor.contents.int_contents.extend([-128, 127])

    assert decode_grpc(message).inputs[0].data.tolist() == [-128, 127]  # type: ignore[union-attr]
