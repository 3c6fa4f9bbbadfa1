"""Turning model outputs and default outputs into JSON values, as Clipper did and better."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import orjson

__all__ = [
    "NON_FINITE_STRINGS",
    "dumps_outputs",
    "json_default",
    "parse_output_string",
    "to_json_value",
    "to_wire_value",
]

# Values that are JSON as they are (exact types: numpy's float64 subclasses float).
_PLAIN_SCALARS = frozenset({int, float, bool, type(None)})


def parse_output_string(text: str) -> Any:
    """Clipper's rule: an output string that parses as JSON becomes that value ("1" -> 1)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def to_json_value(value: Any) -> Any:
    """Make one model output JSON-compatible: numpy to Python, bytes to base64, str parsed;
    another object by its `str()` (Clipper's rule) when its type defines one, else TypeError."""
    if isinstance(value, str):
        return parse_output_string(value)
    if isinstance(value, np.generic):  # before float: np.float64 subclasses float
        return value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    kind: Any = type(value)
    if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
        # Its text would be "<Foo object at 0x...>": no value, and a memory address.
        raise TypeError(
            f"an output of type {type(value).__name__} has no JSON form: return numbers, "
            "strings, bytes, lists, dicts or numpy arrays (or give the type a __str__)"
        )
    return parse_output_string(str(value))  # Clipper's rule: the output's text


def to_wire_value(value: Any) -> Any:
    """Like `to_json_value`, but numeric numpy arrays and byte strings stay as they are: the
    worker RPC carries them as raw buffers (`json_default` renders them as JSON later)."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is list and all(type(item) in _PLAIN_SCALARS for item in value):
        return value  # the common list of numbers, taken as it is
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {str(key): to_wire_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire_value(item) for item in value]
    return to_json_value(value)


NON_FINITE_STRINGS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
"""How a JSON reply writes a float JSON cannot hold: the strings of protobuf's JSON mapping,
which numpy (and so tritonclient's `as_numpy`) reads back as those floats."""

_NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY


def dumps_outputs(reply: Any) -> bytes:
    """A reply holding model outputs as JSON; NaN and the infinities as `NON_FINITE_STRINGS`
    (orjson alone writes them as `null`, which would read as no value)."""
    body = orjson.dumps(reply, default=json_default, option=_NUMPY_JSON)
    if b"null" not in body:  # the common reply: no float written as null
        return body
    return orjson.dumps(_finite(reply), default=json_default, option=_NUMPY_JSON)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (numpy's included) as its string."""
    if isinstance(value, (float, np.floating)):
        return value if math.isfinite(value) else NON_FINITE_STRINGS[str(float(value))]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            return _finite(value.tolist())
        return value
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_default(value: Any) -> Any:
    """orjson's `default` for wire values: arrays it cannot write natively become lists,
    byte strings base64 (as `to_json_value` would have made them)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
