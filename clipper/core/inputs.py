"""Decoding and validating query bodies: JSON in, one encoded buffer per input out.

Every input is checked against `InputLimits` (batch length, string bytes, elements) in O(1)
before it is converted; only keys the decoder does not read are walked for nesting depth.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from typing import Any, NamedTuple

import numpy as np
import orjson

from clipper.core.dtypes import NUMERIC_DTYPES
from clipper.core.exceptions import InvalidInput
from clipper.core.input_limits import InputLimits, check_nesting, json_error
from clipper.core.records import PRIORITIES
from clipper.core.types import InputBuffer, InputType

__all__ = [
    "PredictRequest",
    "decode_predict_request",
    "encode_input",
    "optional_uid",
    "parse_priority",
]

# numpy dtype kinds accepted for each numeric input type (JSON ints are fine for floats).
_ACCEPTED_KINDS = {
    InputType.INTEGERS: "iu",
    InputType.FLOATS: "iuf",
    InputType.DOUBLES: "iuf",
}
_KNOWN_KEYS = frozenset(
    ("input", "input_batch", "version", "latency_slo_micros", "uid", "priority")
)
DEFAULT_LIMITS = InputLimits()
_NATIVE_IS_LITTLE_ENDIAN = sys.byteorder == "little"  # the RPC's doubles are little-endian
_WHOLE_CHECK_MAX = 256
"""Inputs shorter than this are checked for bools element by element (numpy costs more)."""


class PredictRequest(NamedTuple):
    """A decoded `/<app>/predict` body (a named tuple: one is made per request, see
    `clipper.dataplane.prediction`)."""

    buffers: list[InputBuffer]
    is_batch: bool
    version: str | None
    latency_slo_us: int | None
    uid: int | None = None
    priority: int | None = None


def encode_input(value: Any, input_type: InputType, limits: InputLimits = DEFAULT_LIMITS) -> bytes:
    """Validate one JSON input against the app's type and encode it for the RPC."""
    dtype = NUMERIC_DTYPES.get(input_type)
    if dtype is not None:
        if isinstance(value, list):
            limits.check_elements(len(value))
        return _encode_numeric(value, input_type, dtype)
    if input_type is InputType.TENSORS:
        raise InvalidInput("a tensors model takes named tensors: query it with /v2 or gRPC")
    if input_type is InputType.STRINGS:
        if not isinstance(value, str):
            raise InvalidInput(f"expected a string input, got {type(value).__name__}")
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"string input is not valid Unicode: {exc}") from exc
        limits.check_string(len(encoded))
        return encoded
    if not isinstance(value, str):
        kind = type(value).__name__
        raise InvalidInput(f"expected a base64 string for a bytes input, got {kind}")
    limits.check_string(len(value) * 3 // 4)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"invalid base64 in bytes input: {exc}") from exc


def _encode_numeric(value: Any, input_type: InputType, dtype: np.dtype[Any]) -> bytes:
    if not isinstance(value, list):
        raise InvalidInput(f"expected a list of numbers for {input_type.value}, got {value!r:.80}")
    if not value:
        return b""
    if input_type is InputType.DOUBLES and _NATIVE_IS_LITTLE_ENDIAN:
        # The common case, without numpy: `array` takes a flat list of JSON numbers (and
        # bools, refused below) and nothing else; what it refuses gets numpy's diagnosis.
        try:
            doubles = array("d", value)
        except (TypeError, OverflowError):
            pass
        else:
            if len(value) < _WHOLE_CHECK_MAX:
                if bool not in set(map(type, value)):
                    return doubles.tobytes()
            elif not _long_has_bool(value, doubles):
                return doubles.tobytes()
    try:
        numbers = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"input is not a flat list of numbers: {exc}") from exc
    # numpy turns [1, true] into [1, 1]: a JSON bool is never a number here.
    if numbers.dtype.kind != "b" and bool in set(map(type, value)):
        raise InvalidInput(f"input for {input_type.value} must not contain booleans")
    if numbers.ndim != 1 or numbers.dtype.kind not in _ACCEPTED_KINDS[input_type]:
        raise InvalidInput(
            f"input for {input_type.value} must be a flat list of "
            f"{'integers' if input_type is InputType.INTEGERS else 'numbers'}, got {value!r:.80}"
        )
    if (
        input_type is InputType.INTEGERS
        and numbers.size
        and (numbers.max() > np.iinfo(np.int32).max or numbers.min() < np.iinfo(np.int32).min)
    ):
        raise InvalidInput("integer input out of the 32-bit range")
    if input_type is InputType.FLOATS and numbers.dtype.kind == "f":
        try:
            with np.errstate(over="raise"):
                return numbers.astype(dtype, copy=False).tobytes()
        except FloatingPointError as exc:
            raise InvalidInput("input value out of the 32-bit float range") from exc
    return numbers.astype(dtype, copy=False).tobytes()


def _long_has_bool(value: list[Any], doubles: array[float]) -> bool:
    """Whether the JSON numbers `value` (converted to `doubles`, at least _WHOLE_CHECK_MAX)
    hold a bool. A bool became 0.0 or 1.0, so only the elements with those values are looked
    at (a 12,288-float image: a tenth of the time), unless they are many."""
    numbers = np.frombuffer(doubles, dtype=np.float64)
    candidates = np.flatnonzero((numbers == 0.0) | (numbers == 1.0))
    if len(candidates) > len(value) // 4:  # mostly zeros and ones: the whole is cheaper
        return bool in set(map(type, value))
    return bool in set(map(type, map(value.__getitem__, candidates.tolist())))


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{key} must be a positive integer")
    return value


def optional_uid(body: dict[str, Any]) -> int | None:
    """The optional user id (`uid`) of a request: an integer (selection policies may keep
    per-user state or route a user consistently)."""
    uid = body.get("uid")
    if uid is not None and (isinstance(uid, bool) or not isinstance(uid, int)):
        raise InvalidInput("uid must be an integer")
    return uid


def parse_priority(value: object, where: str) -> int:
    """A query's priority as given (`where` names where, for the error): an integer class
    of `PRIORITIES`; InvalidInput (400) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        lowest, highest = PRIORITIES[0], PRIORITIES[-1]
        raise InvalidInput(
            f"{where} must be an integer from {lowest} to {highest}, got {value!r:.40}"
        )
    return value


def decode_predict_request(
    raw: bytes, input_type: InputType, limits: InputLimits = DEFAULT_LIMITS
) -> PredictRequest:
    """Parse a predict body: `{"input": x}` or `{"input_batch": [...]}`, optional version."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise json_error(exc, limits) from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    if len(body) == 1 and "input" in body:  # the common body: no optional key to check
        return PredictRequest([encode_input(body["input"], input_type, limits)], False, None, None)
    if not body.keys() <= _KNOWN_KEYS:  # keys no decoder below reads: bound their nesting
        check_nesting(body, limits)
    version = body.get("version")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise InvalidInput("version must be a string")
        version = str(version)
    slo_us = _optional_int(body, "latency_slo_micros")
    uid = optional_uid(body)
    priority = body.get("priority")
    if priority is not None:
        priority = parse_priority(priority, "priority")
    if "input" in body:
        if "input_batch" in body:
            raise InvalidInput("give either 'input' or 'input_batch', not both")
        buffers: list[InputBuffer] = [encode_input(body["input"], input_type, limits)]
        return PredictRequest(buffers, False, version, slo_us, uid, priority)
    if "input_batch" in body:
        batch = body["input_batch"]
        if not isinstance(batch, list) or not batch:
            raise InvalidInput("input_batch must be a non-empty list of inputs")
        limits.check_batch(len(batch))
        buffers = [encode_input(item, input_type, limits) for item in batch]
        return PredictRequest(buffers, True, version, slo_us, uid, priority)
    raise InvalidInput("the request must have an 'input' or an 'input_batch' key")
