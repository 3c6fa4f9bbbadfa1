"""Between tensors and Clipper's per-input queries: the first dimension is the batch.

A request's tensors become one encoded buffer per batch row, as the dataplane and the
worker RPC carry them: a `[4, 3]` FP64 tensor sent to a `doubles` model is four inputs of
three values (rows are flattened), a `[2]` BYTES tensor sent to a `strings` model two
strings, and a `tensors` model gets per row a dict {input name: numpy array}. Numeric
rows are sliced out of one numpy array (no per-element loop); when the tensor's data is
exactly one bytes object (gRPC's raw contents) a single row is that object, uncopied.

The answers (one per row) become output tensors: a row's answer is the output itself, or
a dict {output name: value} for a model with several outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipper.core.dtypes import NUMERIC_DTYPES
from clipper.core.exceptions import InvalidInput, ModelError
from clipper.core.outputs import dumps_outputs
from clipper.core.types import InputBuffer, InputType
from clipper.frontend.oip.datatypes import BYTES, Tensor, datatype_of, numpy_dtype
from clipper.frontend.oip.signature import Signature, TensorSpec
from clipper.rpc.protocol import encode_tensor_row

__all__ = ["input_buffers", "output_tensors"]

_NUMERIC_KINDS = "biuf"


def input_buffers(
    signature: Signature, input_type: InputType, inputs: list[Tensor]
) -> list[InputBuffer]:
    """Validate a request's tensors against the signature; one buffer per batch row."""
    tensors = _match_inputs(signature, inputs)
    if input_type is InputType.TENSORS:
        return _tensor_rows(tensors)
    tensor = tensors[0]
    dtype = NUMERIC_DTYPES.get(input_type)
    if dtype is not None:
        return _rows(_numeric(tensor, dtype, strict=signature.declared))
    if tensor.datatype != BYTES:
        if input_type is InputType.STRINGS:
            raise InvalidInput(f"input {tensor.name!r} of a strings model must be BYTES")
        return _rows(_array(tensor))
    elements = _single_elements(tensor)
    if input_type is InputType.STRINGS:
        for element in elements:
            _check_utf8(tensor.name, element)
    return list(elements)


def _match_inputs(signature: Signature, inputs: list[Tensor]) -> list[Tensor]:
    """The request's tensors in the signature's order, checked; one batch size."""
    if not signature.declared:
        if len(inputs) != 1:
            raise InvalidInput(f"the model takes one input tensor, got {len(inputs)}")
        expected = signature.inputs[0].name
        if inputs[0].name != expected:
            raise InvalidInput(
                f"unknown input {inputs[0].name!r}: the model's one input is {expected!r} "
                "(see its metadata)"
            )
        tensors = inputs
    else:
        by_name = {tensor.name: tensor for tensor in inputs}
        unknown = set(by_name) - {spec.name for spec in signature.inputs}
        if unknown or len(by_name) != len(inputs):
            raise InvalidInput(f"unexpected or repeated inputs {sorted(unknown)}")
        tensors = [_checked(spec, by_name.get(spec.name)) for spec in signature.inputs]
    batch_sizes = {tensor.shape[0] if tensor.shape else 0 for tensor in tensors}
    if len(batch_sizes) != 1 or 0 in batch_sizes:
        raise InvalidInput(
            "every input needs the same batch size (first dimension, at least 1), got "
            + ", ".join(f"{t.name} {list(t.shape)}" for t in tensors)
        )
    return tensors


def _checked(spec: TensorSpec, tensor: Tensor | None) -> Tensor:
    if tensor is None:
        raise InvalidInput(f"missing input {spec.name!r}")
    if tensor.datatype != spec.datatype:
        raise InvalidInput(
            f"input {spec.name!r} has datatype {tensor.datatype}, the model takes {spec.datatype}"
        )
    if not spec.accepts_shape(tensor.shape):
        raise InvalidInput(
            f"input {spec.name!r} has shape {list(tensor.shape)}, the model takes "
            f"{list(spec.shape)}"
        )
    return tensor


def _array(tensor: Tensor) -> np.ndarray[Any, Any]:
    if not isinstance(tensor.data, np.ndarray):
        raise InvalidInput(f"input {tensor.name!r} is BYTES; the model takes numbers")
    return tensor.data


def _numeric(tensor: Tensor, dtype: np.dtype[Any], strict: bool) -> np.ndarray[Any, Any]:
    """The tensor as the model's dtype: cast when it loses no kind (ints to floats, wider
    to narrower of one kind within range); a declared signature allows no cast."""
    array = _array(tensor)
    if array.dtype == dtype:
        return array
    if strict or not np.can_cast(array.dtype, dtype, "same_kind"):
        raise InvalidInput(
            f"input {tensor.name!r} has datatype {tensor.datatype}; the model takes "
            f"{datatype_of(dtype)}"
        )
    if dtype.kind in "iu" and array.size and array.dtype.kind in "iu":
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise InvalidInput(f"input {tensor.name!r} has values outside {datatype_of(dtype)}")
    return array.astype(dtype)


def _rows(array: np.ndarray[Any, Any]) -> list[InputBuffer]:
    """One buffer per row of the first dimension, each row flattened: the bytes object the
    array covers for one row, else read-only views of its memory (a copy only when it is
    not C-contiguous; the cache copies what it keeps)."""
    count = array.shape[0]
    base = _bytes_base(array)
    if base is not None and count == 1:
        return [base]
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8).data.toreadonly()
    step = len(flat) // count
    return [flat[i * step : (i + 1) * step] for i in range(count)]


def _bytes_base(array: np.ndarray[Any, Any]) -> bytes | None:
    """The bytes object `array` covers exactly, if any (then its rows need no copy)."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, bytes) and array.flags.c_contiguous and len(base) == array.nbytes:
        return base
    return None


def _single_elements(tensor: Tensor) -> list[bytes]:
    elements = tensor.data
    if not isinstance(elements, list) or len(elements) != tensor.shape[0]:
        raise InvalidInput(
            f"input {tensor.name!r}: each batch row must hold one element, got shape "
            f"{list(tensor.shape)}"
        )
    return elements


def _check_utf8(name: str, element: bytes) -> None:
    try:
        element.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"input {name!r} holds bytes that are not UTF-8: {exc}") from exc


def _tensor_rows(tensors: list[Tensor]) -> list[InputBuffer]:
    count = tensors[0].shape[0]
    columns = [(tensor.name, _row_values(tensor, count)) for tensor in tensors]
    return [encode_tensor_row({name: values[i] for name, values in columns}) for i in range(count)]


def _row_values(tensor: Tensor, count: int) -> list[Any]:
    if isinstance(tensor.data, np.ndarray):
        return [tensor.data[i, ...] for i in range(count)]  # arrays, 0-d ones included
    row_shape = tensor.shape[1:]
    per_row = len(tensor.data) // count
    rows = []
    for i in range(count):
        row = np.empty(per_row, dtype=object)
        row[:] = tensor.data[i * per_row : (i + 1) * per_row]
        rows.append(row.reshape(row_shape))
    return rows


# -- answers -> output tensors -----------------------------------------------------------


def output_tensors(signature: Signature, input_type: InputType, answers: list[Any]) -> list[Tensor]:
    """The output tensors of a batch, one answer per row."""
    several = len(signature.outputs) > 1
    tensors = []
    for spec in signature.outputs:
        values = [_pick(answer, spec.name, several) for answer in answers]
        if signature.declared:
            tensors.append(_declared_output(spec, values))
        else:
            tensors.append(_default_output(spec.name, values, NUMERIC_DTYPES.get(input_type)))
    return tensors


def _pick(answer: Any, name: str, several: bool) -> Any:
    if isinstance(answer, dict) and name in answer:
        return answer[name]
    if several:
        raise ModelError(f"the model's answer has no output {name!r}: {answer!r:.100}")
    return answer


def _declared_output(spec: TensorSpec, values: list[Any]) -> Tensor:
    if spec.datatype == BYTES:
        tensor = _bytes_output(spec.name, values)
    else:
        dtype = numpy_dtype(spec.datatype)
        array = _stack(spec.name, values)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below
            converted = array.astype(dtype, copy=False)
        if not np.can_cast(array.dtype, dtype, "same_kind") and not np.array_equal(
            converted, array
        ):
            raise ModelError(f"output {spec.name!r} does not fit datatype {spec.datatype}")
        if _overflowed(array, converted):
            raise ModelError(
                f"output {spec.name!r} holds values beyond {spec.datatype}'s range "
                f"(largest magnitude {float(np.nanmax(np.abs(array[np.isfinite(array)]))):g})"
            )
        tensor = Tensor(spec.name, spec.datatype, converted.shape, converted)
    if not spec.accepts_shape(tensor.shape):
        raise ModelError(
            f"output {spec.name!r} has shape {list(tensor.shape)}; the signature declares "
            f"{list(spec.shape)}"
        )
    return tensor


def _default_output(name: str, values: list[Any], model_dtype: np.dtype[Any] | None) -> Tensor:
    """Without a signature the values decide: numbers -> a numeric tensor (in the model's
    input dtype where that keeps their kind), strings and bytes -> BYTES, anything else ->
    BYTES holding each answer as JSON."""
    if all(isinstance(value, (str, bytes)) for value in values):
        return _bytes_output(name, values)
    try:
        array = _stack(name, values)
    except ModelError:
        array = None
    if array is None or array.dtype.kind not in _NUMERIC_KINDS:
        return Tensor(name, BYTES, (len(values),), [_json(value) for value in values])
    if model_dtype is not None and array.dtype.kind != "b" and _fits(array, model_dtype):
        array = array.astype(model_dtype, copy=False)
    return Tensor(name, datatype_of(array.dtype), array.shape, array)


def _fits(array: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> bool:
    if not np.can_cast(array.dtype, dtype, "same_kind"):
        return False
    if dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        return bool(array.min() >= info.min and array.max() <= info.max)
    with np.errstate(over="ignore"):
        return not _overflowed(array, array.astype(dtype, copy=False))


def _overflowed(array: np.ndarray[Any, Any], converted: np.ndarray[Any, Any]) -> bool:
    """Whether a conversion to a narrower float made a finite value infinite (FP16 tops
    out at 65504): never done silently."""
    if converted.dtype.kind != "f" or converted.dtype.itemsize >= array.dtype.itemsize:
        return False
    return bool(np.any(np.isinf(converted) & np.isfinite(array)))


def _stack(name: str, values: list[Any]) -> np.ndarray[Any, Any]:
    """The batch's answers as one array (a single array answer needs no copy)."""
    if len(values) == 1 and isinstance(values[0], np.ndarray):
        return values[0][np.newaxis]
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"the answers for output {name!r} differ in shape: {exc}") from exc
    if array.dtype.kind == "O":
        raise ModelError(f"the answers for output {name!r} are not numbers of one shape")
    return array


def _bytes_output(name: str, values: list[Any]) -> Tensor:
    rows = [_elements(value) for value in values]
    shapes = {shape for shape, _ in rows}
    if len(shapes) != 1:
        raise ModelError(f"the answers for output {name!r} differ in shape")
    elements = [element for _, row in rows for element in row]
    return Tensor(name, BYTES, (len(values), *shapes.pop()), elements)


def _elements(value: Any) -> tuple[tuple[int, ...], list[bytes]]:
    """A BYTES answer: its shape and flat elements."""
    if isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, (str, bytes)):
        array = np.empty(len(value), dtype=object)
        array[:] = [_element(item) for item in value]
        return (len(value),), list(array)
    return (), [_element(value)]


def _element(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return _json(value)


def _json(value: Any) -> bytes:
    return dumps_outputs(value)
