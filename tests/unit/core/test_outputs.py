"""Model outputs and default outputs turned into JSON values (and RPC wire values)."""

from __future__ import annotations

import decimal
from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.outputs import (
    dumps_outputs,
    json_default,
    parse_output_string,
    to_json_value,
    to_wire_value,
)


class Labelled:
    """An object a model might return: rendered through its str()."""

    def __str__(self) -> str:
        return "label-7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("-2.5", -2.5),
        ("true", True),
        ("null", None),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ('"quoted"', "quoted"),
        ("cat", "cat"),
        ("", ""),
        ("{broken", "{broken"),
    ],
)
def test_parse_output_string_parses_json_and_keeps_other_text(text: str, expected: Any) -> None:
    assert parse_output_string(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (2.5, 2.5),
        ("7", 7),
        ("dog", "dog"),
        (np.int64(4), 4),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
        (b"\x00\xff", "AP8="),
        (bytearray(b"hi"), "aGk="),
        (memoryview(b"hi"), "aGk="),
        ((1, "2", np.float32(3.0)), [1, 2, 3.0]),
        ({1: np.arange(2), "k": b"x"}, {"1": [0, 1], "k": "eA=="}),
        (decimal.Decimal("1.5"), 1.5),
        (Labelled(), "label-7"),
    ],
    ids=repr,
)
def test_to_json_value_makes_outputs_json_compatible(value: Any, expected: Any) -> None:
    converted = to_json_value(value)

    assert converted == expected
    assert orjson.loads(orjson.dumps(converted)) == expected


@pytest.mark.parametrize(
    ("value", "kind"), [(np.int64(4), int), (np.float32(0.5), float), (np.bool_(False), bool)]
)
def test_numpy_scalars_become_plain_python_values(value: Any, kind: type) -> None:
    assert type(to_json_value(value)) is kind


def test_a_numpy_double_becomes_a_plain_float() -> None:
    assert type(to_json_value(np.float64(0.5))) is float


def test_to_wire_value_keeps_numeric_arrays_as_they_are() -> None:
    array = np.arange(3, dtype=np.float32)

    assert to_wire_value(array) is array


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (bytearray(b"hi"), b"hi"),
        (memoryview(b"hi"), b"hi"),
        ("1", 1),
        (np.float64(2.0), 2.0),
        (np.array(["a", "b"]), ["a", "b"]),
        ({1: "x", "k": [b"y", "2"]}, {"1": "x", "k": [b"y", 2]}),
    ],
    ids=repr,
)
def test_to_wire_value_keeps_bytes_and_converts_the_rest(value: Any, expected: Any) -> None:
    assert to_wire_value(value) == expected


def test_wire_values_render_as_the_json_values_would() -> None:
    output = {"a": np.arange(2), "b": b"x", "c": np.float32(1.5)}

    rendered = orjson.loads(orjson.dumps(to_wire_value(output), default=json_default))

    assert rendered == to_json_value(output) == {"a": [0, 1], "b": "eA==", "c": 1.5}


def test_json_default_refuses_what_it_cannot_render() -> None:
    with pytest.raises(TypeError, match="Labelled is not JSON serialisable"):
        json_default(Labelled())


class Opaque:
    """An object with neither __str__ nor __repr__ of its own."""


def test_an_object_without_a_text_of_its_own_is_refused_not_sent_as_its_address() -> None:
    with pytest.raises(TypeError, match="an output of type Opaque has no JSON form"):
        to_wire_value(Opaque())
    with pytest.raises(TypeError, match="Opaque"):
        to_json_value([1, {"x": Opaque()}])


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (float("nan"), b'{"output":"NaN"}'),
        (float("inf"), b'{"output":"Infinity"}'),
        ([1.0, float("-inf")], b'{"output":[1.0,"-Infinity"]}'),
        (np.array([np.nan, 2.0], np.float32), b'{"output":["NaN",2.0]}'),
        ({"a": np.float64("inf"), "b": None}, b'{"output":{"a":"Infinity","b":null}}'),
        (np.array([1.0, 2.0]), b'{"output":[1.0,2.0]}'),
        (None, b'{"output":null}'),
    ],
)
def test_non_finite_floats_are_written_as_protobuf_json_strings(
    output: Any, expected: bytes
) -> None:
    assert dumps_outputs({"output": output}) == expected


def test_numpy_reads_the_non_finite_strings_back_as_floats() -> None:
    sent = np.array([np.nan, np.inf, -np.inf, 1.5])
    read = np.array(orjson.loads(dumps_outputs(sent)), np.float32)
    np.testing.assert_array_equal(read, sent.astype(np.float32))
