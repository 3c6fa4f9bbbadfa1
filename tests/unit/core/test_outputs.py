"""Model outputs and default outputs turned into JSON values (and RPC wire values)."""

from __future__ import annotations

import decimal
from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.outputs import json_default, parse_output_string, to_json_value, to_wire_value


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
