"""Property tests of the query decoders: arbitrary bytes and structured-but-wrong JSON only
ever raise the project's own errors (ClipperError), never IndexError, KeyError and kin."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.core.input_limits import InputLimits
from clipper.core.inputs import decode_predict_request
from clipper.core.types import InputType
from clipper.frontend.oip.datatypes import deserialize_bytes
from clipper.frontend.oip.rest_codec import binary_data, decode_infer_request

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = InputLimits(max_batch_inputs=16, max_string_bytes=256, max_tensor_elements=256,
                    max_json_depth=8)  # fmt: skip
INPUT_TYPES = list(InputType)
DATATYPES = ["BOOL", "UINT8", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16",
             "X", ""]  # fmt: skip

INT64 = st.integers(-(2**63), 2**64 - 1)  # what JSON (orjson) carries
scalars = st.none() | st.booleans() | INT64 | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
numbers = INT64 | st.floats(allow_nan=False)
shapes = st.lists(st.integers(-2, 2**33) | st.booleans() | st.text(max_size=2), max_size=4)


def only_clipper_errors(call: Any, *args: Any) -> None:
    """Run `call`; any exception it raises must be a ClipperError."""
    with contextlib.suppress(ClipperError):
        call(*args)


@FUZZ
@given(raw=st.binary(max_size=300), input_type=st.sampled_from(INPUT_TYPES))
def test_predict_bodies_of_arbitrary_bytes(raw: bytes, input_type: InputType) -> None:
    only_clipper_errors(decode_predict_request, raw, input_type, SMALL)


@FUZZ
@given(
    key=st.sampled_from(["input", "input_batch", "version", "uid", "latency_slo_micros", "x"]),
    value=json_values | st.lists(st.lists(numbers, max_size=20), max_size=20),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    input_type=st.sampled_from(INPUT_TYPES),
)
def test_predict_bodies_of_wrong_json(
    key: str, value: Any, extra: dict[str, Any], input_type: InputType
) -> None:
    raw = orjson.dumps({**extra, key: value})
    only_clipper_errors(decode_predict_request, raw, input_type, SMALL)


@FUZZ
@given(raw=st.binary(max_size=300), header_length=st.none() | st.integers(-5, 400))
def test_v2_bodies_of_arbitrary_bytes(raw: bytes, header_length: int | None) -> None:
    only_clipper_errors(decode_infer_request, raw, header_length, SMALL)


tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5) | st.integers(-5, 5),
        "datatype": st.sampled_from(DATATYPES) | st.integers(-5, 5),
        "shape": shapes | json_values,
        "data": json_values | st.lists(numbers, max_size=40),
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "binary_data", "x"]),
            st.integers(-3, 50) | json_values,
            max_size=2,
        )
        | json_values,
    },
)


@FUZZ
@given(
    inputs=st.lists(tensors, max_size=3) | json_values,
    outputs=st.none() | st.lists(json_values, max_size=2),
    parameters=st.none() | json_values,
    binary=st.binary(max_size=64),
)
def test_v2_bodies_of_wrong_tensors(
    inputs: Any, outputs: Any, parameters: Any, binary: bytes
) -> None:
    header = orjson.dumps({"inputs": inputs, "outputs": outputs, "parameters": parameters})
    only_clipper_errors(decode_infer_request, header + binary, len(header), SMALL)


@FUZZ
@given(
    datatype=st.sampled_from(DATATYPES),
    chunk=st.binary(max_size=128),
    shape=st.lists(st.integers(-1, 2**40), max_size=3),
)
def test_v2_binary_tensor_data(datatype: str, chunk: bytes, shape: list[int]) -> None:
    only_clipper_errors(binary_data, "t", datatype, chunk, tuple(shape), SMALL)


@FUZZ
@given(chunk=st.binary(max_size=128), count=st.integers(0, 64))
def test_v2_bytes_elements(chunk: bytes, count: int) -> None:
    only_clipper_errors(deserialize_bytes, chunk, count)


def test_a_tensors_app_refuses_the_clipper_format_with_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="query it with /v2 or gRPC"):
        decode_predict_request(orjson.dumps({"input": [1, 2]}), InputType.TENSORS, SMALL)


@pytest.mark.parametrize("input_type", [t for t in INPUT_TYPES if t is not InputType.TENSORS])
def test_a_valid_request_still_decodes(input_type: InputType) -> None:
    value: Any = "aGk=" if input_type in (InputType.BYTES, InputType.STRINGS) else [1, 2]
    request = decode_predict_request(orjson.dumps({"input": value}), input_type, SMALL)

    assert len(request.buffers) == 1
