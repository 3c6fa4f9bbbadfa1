"""Tensors of the Open Inference Protocol: datatypes, and the BYTES wire format."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import parse_priority

__all__ = [
    "BYTES",
    "DATATYPES",
    "InferRequest",
    "InferResponse",
    "RequestedOutput",
    "Tensor",
    "datatype_of",
    "deserialize_bytes",
    "element_count",
    "numpy_dtype",
    "serialize_bytes",
]

BYTES = "BYTES"

# The protocol's datatypes and their numpy dtypes (little-endian, as on the wire).
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("|b1"),
    "UINT8": np.dtype("|u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("|i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items()}
_LENGTH = struct.Struct("<I")

TensorData = np.ndarray[Any, Any] | list[bytes]


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor. `data` is a numpy array of `shape` for numeric datatypes, or the
    flat (row-major) list of elements for BYTES."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: TensorData
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client asked for; `binary` None means the request's default."""

    name: str
    binary: bool | None = None


@dataclass(frozen=True, slots=True)
class InferRequest:
    """An inference request, whatever transport it came by."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_output: bool = False

    @property
    def timeout_us(self) -> int | None:
        """The request's `timeout` parameter (microseconds), if any."""
        value = self.parameters.get("timeout")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInput("the timeout parameter must be a positive integer (microseconds)")
        return value

    @property
    def priority(self) -> int | None:
        """The request's `priority` parameter (0 to 9, at most its app's class), if any."""
        value = self.parameters.get("priority")
        return None if value is None else parse_priority(value, "the priority parameter")


@dataclass(frozen=True, slots=True)
class InferResponse:
    """An inference response: the outputs to send, each flagged binary or not."""

    model_name: str
    model_version: str
    outputs: list[Tensor]
    binary: list[bool]
    id: str | None = None


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a numeric datatype; InvalidInput for BYTES or unknown names."""
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        known = ", ".join([*DATATYPES, BYTES])
        raise InvalidInput(f"unsupported datatype {datatype!r} (supported: {known})")
    return dtype


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol's name of a numpy dtype."""
    name = _BY_DTYPE.get(dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype)
    if name is None:
        raise InvalidInput(f"numpy dtype {dtype} has no Open Inference Protocol datatype")
    return name


MAX_DIMENSIONS = 32
"""Most dimensions of a tensor (numpy 1 allows 32, numpy 2 64)."""
MAX_DIMENSION = 2**31 - 1
"""Largest dimension (int32's largest: what frameworks index with)."""


def element_count(shape: Sequence[int]) -> int:
    """Elements in a tensor of `shape`; InvalidInput for a shape no array can have: more
    than MAX_DIMENSIONS dimensions, a negative one, or one over MAX_DIMENSION beside a 0
    (without a 0, a huge dimension is a count over the elements limit: 413)."""
    if len(shape) > MAX_DIMENSIONS:
        raise InvalidInput(f"invalid shape: {len(shape)} dimensions, at most {MAX_DIMENSIONS}")
    count = 1
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise InvalidInput(f"invalid shape {_shown(shape)}: dimensions are integers >= 0")
        count *= dim
    if count == 0 and any(dim > MAX_DIMENSION for dim in shape):
        raise InvalidInput(
            f"invalid shape {_shown(shape)}: dimensions are integers in [0, {MAX_DIMENSION}]"
        )
    return count


def _shown(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 200 else f"{text[:200]}..."


def serialize_bytes(elements: Sequence[bytes]) -> bytes:
    """BYTES on the wire: each element as a 4-byte little-endian length, then its bytes."""
    parts: list[bytes] = []
    for element in elements:
        parts.append(_LENGTH.pack(len(element)))
        parts.append(element)
    return b"".join(parts)


def deserialize_bytes(buffer: bytes | memoryview, count: int) -> list[bytes]:
    """The `count` elements of a serialized BYTES tensor; InvalidInput if it does not fit."""
    view = memoryview(buffer)
    elements: list[bytes] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(view):
            raise InvalidInput("BYTES tensor data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidInput("BYTES tensor data ends inside an element")
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    if offset != len(view):
        raise InvalidInput(f"BYTES tensor data holds more than its {count} elements")
    return elements
