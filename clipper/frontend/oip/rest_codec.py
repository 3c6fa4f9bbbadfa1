"""REST bodies of the Open Inference Protocol, with the binary tensor data extension.

A request body is a JSON header, optionally followed by binary tensor data: then the
`Inference-Header-Content-Length` header gives the JSON's size, and each input with a
`binary_data_size` parameter takes that many bytes after it, in input order. Numeric
binary data becomes a numpy array over the body (no per-element loop); BYTES elements are
4-byte little-endian lengths followed by their bytes. Each tensor's declared shape is held
to `InputLimits` (elements, batch rows) before its data is read; free-form `parameters`
are held to the nesting limit. Responses mirror this: outputs asked
for with `binary_data` (or the request's `binary_data_output`) go after the JSON header.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from clipper.core.exceptions import InvalidInput
from clipper.core.input_limits import InputLimits, check_nesting, json_error
from clipper.core.outputs import dumps_outputs
from clipper.frontend.oip.datatypes import (
    BYTES,
    InferRequest,
    InferResponse,
    RequestedOutput,
    Tensor,
    deserialize_bytes,
    element_count,
    numpy_dtype,
    serialize_bytes,
)

__all__ = ["check_shape", "decode_infer_request", "encode_infer_response"]

_UNSUPPORTED_PARAMETERS = ("shared_memory_region", "classification")
_KNOWN_KEYS = frozenset(("id", "parameters", "inputs", "outputs"))
DEFAULT_LIMITS = InputLimits()


def check_shape(shape: tuple[int, ...], limits: InputLimits) -> int:
    """The element count of a valid `shape` within the limits (the first dimension is the
    batch); InvalidInput or PayloadTooLarge otherwise."""
    count = element_count(shape)
    limits.check_elements(count)
    if shape:
        limits.check_batch(shape[0])
    return count


def decode_infer_request(
    body: bytes, header_length: int | None, limits: InputLimits = DEFAULT_LIMITS
) -> InferRequest:
    """Parse an inference request body (JSON, or JSON then binary tensor data)."""
    if header_length is None:
        header_length = len(body)
    if not 0 < header_length <= len(body):
        raise InvalidInput(f"Inference-Header-Content-Length {header_length} does not fit")
    view = memoryview(body)
    try:
        header = orjson.loads(view[:header_length])
    except orjson.JSONDecodeError as exc:
        raise json_error(exc, limits) from exc
    if not isinstance(header, dict):
        raise InvalidInput("the request body must be a JSON object")
    if not header.keys() <= _KNOWN_KEYS:
        check_nesting(header, limits)
    binary = view[header_length:]
    inputs, used = _inputs(header.get("inputs"), binary, limits)
    if used != len(binary):
        raise InvalidInput(
            f"the body holds {len(binary)} bytes of binary data, the inputs use {used}"
        )
    parameters = _parameters(header.get("parameters"), "request", limits)
    return InferRequest(
        inputs=inputs,
        outputs=_requested_outputs(header.get("outputs"), limits),
        id=_request_id(header.get("id")),
        parameters=parameters,
        binary_output=_flag(parameters, "binary_data_output"),
    )


def _request_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput("id must be a string")


def _parameters(value: Any, where: str, limits: InputLimits) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"the {where}'s parameters must be an object")
    check_nesting(value, limits, 3)  # body -> parameters
    for key in _UNSUPPORTED_PARAMETERS:
        if key in value:
            raise InvalidInput(f"parameter {key!r} is not supported by this server")
    return value


def _flag(parameters: dict[str, Any], key: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"parameter {key!r} must be a boolean")
    return value


def _inputs(items: Any, binary: memoryview, limits: InputLimits) -> tuple[list[Tensor], int]:
    if not isinstance(items, list) or not items:
        raise InvalidInput("inputs must be a non-empty list of tensors")
    limits.check_batch(len(items))
    tensors = []
    offset = 0
    for item in items:
        tensor, size = _input(item, binary, offset, limits)
        tensors.append(tensor)
        offset += size
    return tensors, offset


def _input(item: Any, binary: memoryview, offset: int, limits: InputLimits) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise InvalidInput("each input must be an object")
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise InvalidInput("each input needs a string name and datatype")
    if not isinstance(shape, list):
        raise InvalidInput(f"input {name!r} needs a shape (a list of integers)")
    shape_t = tuple(shape)
    check_shape(shape_t, limits)
    parameters = _parameters(item.get("parameters"), f"input {name!r}", limits)
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise InvalidInput(f"input {name!r} has neither data nor binary_data_size")
        data = _json_data(name, datatype, item["data"], shape_t, limits)
        return Tensor(name, datatype, shape_t, data), 0
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput(f"input {name!r}: binary_data_size must be an integer >= 0")
    if offset + size > len(binary):
        raise InvalidInput(f"input {name!r}: binary_data_size runs past the end of the body")
    chunk = binary[offset : offset + size]
    data = binary_data(name, datatype, chunk, shape_t, limits)
    return Tensor(name, datatype, shape_t, data), size


def binary_data(
    name: str,
    datatype: str,
    chunk: bytes | memoryview,
    shape: tuple[int, ...],
    limits: InputLimits = DEFAULT_LIMITS,
) -> np.ndarray[Any, Any] | list[bytes]:
    """Tensor contents from raw bytes: a numpy array over them, or BYTES elements."""
    count = check_shape(shape, limits)
    if datatype == BYTES:
        return _within(deserialize_bytes(chunk, count), limits)
    dtype = numpy_dtype(datatype)
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: {len(chunk)} bytes of data for shape {list(shape)} of {datatype}"
        )
    return np.frombuffer(chunk, dtype).reshape(shape)


def _within(elements: list[bytes], limits: InputLimits) -> list[bytes]:
    """`elements`, each checked against `max_string_bytes`."""
    if elements:
        limits.check_string(max(map(len, elements)))
    return elements


def _json_data(
    name: str, datatype: str, data: Any, shape: tuple[int, ...], limits: InputLimits
) -> np.ndarray[Any, Any] | list[bytes]:
    count = element_count(shape)
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: data must be a list")
    if datatype == BYTES:
        elements = [_utf8_element(name, item) for item in _flatten(data, limits)]
        if len(elements) != count:
            raise InvalidInput(f"input {name!r}: {len(elements)} elements for {count} in shape")
        return _within(elements, limits)
    dtype = numpy_dtype(datatype)
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"input {name!r}: data is not a list of numbers: {exc}") from exc
    if array.size != count:
        raise InvalidInput(f"input {name!r}: {array.size} elements for {count} in shape")
    if count and not _json_kind_ok(array.dtype.kind, dtype.kind):
        raise InvalidInput(f"input {name!r}: data elements do not fit datatype {datatype}")
    if dtype.kind in "iu" and count:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise InvalidInput(f"input {name!r}: values outside the range of {datatype}")
    return array.astype(dtype).reshape(shape)


def _json_kind_ok(got: str, want: str) -> bool:
    """JSON numbers of kind `got` coerced to a dtype of kind `want` without loss of kind."""
    if want == "b":
        return got == "b"
    if want in "iu":
        return got in "iu"
    return got in "iuf"


def _flatten(data: list[Any], limits: InputLimits, depth: int = 4) -> list[Any]:
    """Nested lists' items in order; `depth` is `data`'s nesting in the body."""
    if depth > limits.max_json_depth:
        check_nesting(data, limits, depth)
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flatten(item, limits, depth + 1))
        else:
            flat.append(item)
    return flat


def _utf8_element(name: str, item: Any) -> bytes:
    if not isinstance(item, str):
        raise InvalidInput(f"input {name!r}: BYTES data in JSON must be strings")
    return item.encode("utf-8")


def _requested_outputs(items: Any, limits: InputLimits) -> list[RequestedOutput] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidInput("outputs must be a list")
    requested = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput("each requested output needs a string name")
        parameters = _parameters(item.get("parameters"), f"output {item['name']!r}", limits)
        binary = parameters.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise InvalidInput("binary_data must be a boolean")
        requested.append(RequestedOutput(item["name"], binary))
    return requested


# -- responses ------------------------------------------------------------------------------


def encode_infer_response(response: InferResponse) -> tuple[bytes, list[Any]]:
    """The JSON header and the binary chunks that follow it (empty: JSON only)."""
    chunks: list[Any] = []
    outputs = []
    for tensor, binary in zip(response.outputs, response.binary, strict=True):
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if binary:
            chunk = _binary_chunk(tensor)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = _json_output(tensor)
        outputs.append(entry)
    body: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        body["id"] = response.id
    return dumps_outputs(body), chunks


def _binary_chunk(tensor: Tensor) -> Any:
    if isinstance(tensor.data, np.ndarray):
        return np.ascontiguousarray(tensor.data).reshape(-1).view(np.uint8).data
    return serialize_bytes(tensor.data)


def _json_output(tensor: Tensor) -> Any:
    if isinstance(tensor.data, np.ndarray):
        return np.ascontiguousarray(tensor.data).reshape(-1)
    try:
        return [element.decode("utf-8") for element in tensor.data]
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"output {tensor.name!r} holds bytes that are not UTF-8; ask for it with binary_data"
        ) from exc
