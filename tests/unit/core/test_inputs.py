"""Decoding and validating `/<app>/predict` bodies."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import PredictRequest, decode_predict_request
from clipper.core.types import InputType


def decode(body: Any, input_type: InputType = InputType.DOUBLES) -> PredictRequest:
    return decode_predict_request(orjson.dumps(body), input_type)


def raw(values: list[float], dtype: str) -> bytes:
    return np.asarray(values, dtype).tobytes()


@pytest.mark.parametrize(
    ("input_type", "values", "dtype"),
    [
        (InputType.DOUBLES, [1.5, 2, -3], "<f8"),
        (InputType.FLOATS, [0.25, 7], "<f4"),
        (InputType.INTEGERS, [1, -2, 2**31 - 1, -(2**31)], "<i4"),
    ],
)
def test_numeric_input_is_encoded_as_raw_little_endian_values(
    input_type: InputType, values: list[float], dtype: str
) -> None:
    request = decode({"input": values}, input_type)

    assert request == PredictRequest([raw(values, dtype)], False, None, None)


@pytest.mark.parametrize("input_type", [InputType.DOUBLES, InputType.FLOATS])
def test_doubles_and_floats_accept_json_integers(input_type: InputType) -> None:
    [buffer] = decode({"input": [1, 2]}, input_type).buffers

    assert buffer == raw([1.0, 2.0], "<f8" if input_type is InputType.DOUBLES else "<f4")


@pytest.mark.parametrize("values", [[1.5], [1.0], [1, 2.5]])
def test_integers_refuse_floats(values: list[float]) -> None:
    with pytest.raises(InvalidInput, match="flat list of integers"):
        decode({"input": values}, InputType.INTEGERS)


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_integers_refuse_values_outside_32_bits(value: int) -> None:
    with pytest.raises(InvalidInput, match="32-bit range"):
        decode({"input": [1, value]}, InputType.INTEGERS)


def test_an_empty_numeric_input_is_an_empty_buffer() -> None:
    assert decode({"input": []}).buffers == [b""]


def test_strings_are_encoded_as_utf8() -> None:
    assert decode({"input": "héllo"}, InputType.STRINGS).buffers == ["héllo".encode()]


@pytest.mark.parametrize("value", [1, 1.5, True, None, ["a"], {"a": "b"}])
def test_strings_refuse_anything_but_a_string(value: Any) -> None:
    with pytest.raises(InvalidInput, match="expected a string input"):
        decode({"input": value}, InputType.STRINGS)


def test_bytes_are_decoded_from_base64() -> None:
    encoded = base64.b64encode(b"\x00\xffdata").decode()

    assert decode({"input": encoded}, InputType.BYTES).buffers == [b"\x00\xffdata"]


@pytest.mark.parametrize("value", ["abc", "!!!!", "aGk=x", "aGk"])
def test_bytes_refuse_invalid_base64(value: str) -> None:
    with pytest.raises(InvalidInput, match="invalid base64"):
        decode({"input": value}, InputType.BYTES)


@pytest.mark.parametrize("value", [[1, 2], 5, None])
def test_bytes_refuse_anything_but_a_string(value: Any) -> None:
    with pytest.raises(InvalidInput, match="expected a base64 string"):
        decode({"input": value}, InputType.BYTES)


def test_a_tensors_app_refuses_the_clipper_query_shape() -> None:
    with pytest.raises(InvalidInput, match="/v2 or gRPC"):
        decode({"input": [1.0]}, InputType.TENSORS)


def test_input_batch_gives_one_buffer_per_input() -> None:
    request = decode({"input_batch": [[1.0], [2.0, 3.0]]})

    assert request.buffers == [raw([1.0], "<f8"), raw([2.0, 3.0], "<f8")]
    assert request.is_batch


def test_one_bad_item_in_input_batch_refuses_the_whole_request() -> None:
    with pytest.raises(InvalidInput, match="expected a string input"):
        decode({"input_batch": ["ok", 1]}, InputType.STRINGS)


@pytest.mark.parametrize(("version", "expected"), [(3, "3"), ("v2", "v2"), (None, None)])
def test_version_is_stringified(version: Any, expected: str | None) -> None:
    assert decode({"input": [1.0], "version": version}).version == expected


@pytest.mark.parametrize("version", [True, 1.5, [1], {"v": 1}])
def test_version_must_be_a_string_or_integer(version: Any) -> None:
    with pytest.raises(InvalidInput, match="version must be a string"):
        decode({"input": [1.0], "version": version})


def test_latency_slo_micros_is_read() -> None:
    assert decode({"input": [1.0], "latency_slo_micros": 20_000}).latency_slo_us == 20_000


@pytest.mark.parametrize("slo", [0, -5, True, "100", 1.5])
def test_latency_slo_micros_must_be_a_positive_integer(slo: Any) -> None:
    with pytest.raises(InvalidInput, match="latency_slo_micros must be a positive integer"):
        decode({"input": [1.0], "latency_slo_micros": slo})


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{", "malformed JSON"),
        (b"not json", "malformed JSON"),
        (b"", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"input"', "must be a JSON object"),
        (b"{}", "'input' or an 'input_batch' key"),
        (b'{"input": [1.0], "input_batch": [[2.0]]}', "either 'input' or 'input_batch'"),
        (b'{"inputs": [1.0]}', "'input' or an 'input_batch' key"),
        (b'{"input": [[1.0, 2.0]]}', "flat list of numbers"),
        (b'{"input": [[1.0], [2.0, 3.0]]}', "flat list of numbers"),
        (b'{"input": [1.0, [2.0]]}', "flat list of numbers"),
        (b'{"input": [true, false]}', "flat list of numbers"),
        (b'{"input": ["a", 1]}', "flat list of numbers"),
        (b'{"input": ["1.0"]}', "flat list of numbers"),
        (b'{"input": [null]}', "flat list of numbers"),
        (b'{"input": 1.0}', "expected a list of numbers"),
        (b'{"input": true}', "expected a list of numbers"),
        (b'{"input": null}', "expected a list of numbers"),
        (b'{"input": {"a": 1}}', "expected a list of numbers"),
        (b'{"input_batch": []}', "non-empty list"),
        (b'{"input_batch": [1.0]}', "expected a list of numbers"),
        (b'{"input_batch": {"a": [1.0]}}', "non-empty list"),
    ],
)
def test_malformed_bodies_raise_invalid_input(body: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        decode_predict_request(body, InputType.DOUBLES)


@pytest.mark.parametrize(
    ("input_type", "values"),
    [(InputType.INTEGERS, [1, True]), (InputType.DOUBLES, [1.5, True])],
)
def test_a_bool_among_numbers_is_refused(input_type: InputType, values: list[Any]) -> None:
    with pytest.raises(InvalidInput):
        decode({"input": values}, input_type)


LONG = [round(0.01 * (i % 201) - 1.0, 2) for i in range(4096)]  # holds 0.0 and 1.0


@pytest.mark.parametrize(
    "values",
    [
        [*LONG[:2000], True, *LONG[2000:]],
        [*LONG, False],
        [0.0] * 3000 + [True] + [1.0] * 3000,  # mostly zeros and ones: checked whole
    ],
)
def test_a_bool_in_a_long_input_is_refused(values: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="booleans"):
        decode({"input": values})


@pytest.mark.parametrize("values", [LONG, [0.0] * 3000 + [1, 0] * 500, [0.5] * 4095 + [1]])
def test_a_long_input_of_numbers_equal_to_bools_is_encoded(values: list[Any]) -> None:
    assert decode({"input": values}).buffers == [raw(values, "<f8")]
