"""Model signatures: the named, typed and shaped tensors a model takes and returns.

A signature is declared at deploy time as JSON, in the shape the metadata endpoint reports:

    {"inputs":  [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}, ...],
     "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}, ...]}

The first dimension of every shape is the batch dimension; -1 marks a dimension of any
size. A model of one of Clipper's input types declares exactly one input, whose datatype
matches the type (INT32 for integers, FP32 for floats, FP64 for doubles, BYTES for
strings, any for bytes); a `tensors` model may declare any number. A model deployed
without a signature has the default one: an input `input` and an output `output`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from clipper.core.exceptions import InvalidRequest
from clipper.core.types import InputType
from clipper.frontend.oip.datatypes import BYTES, DATATYPES

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_OUTPUT",
    "Signature",
    "TensorSpec",
    "default_signature",
    "signature_for",
    "validate_signature",
]

DEFAULT_INPUT = "input"
DEFAULT_OUTPUT = "output"

# The datatype of the one input of a model of each Clipper input type (None: any).
_INPUT_DATATYPES: dict[InputType, str | None] = {
    InputType.INTEGERS: "INT32",
    InputType.FLOATS: "FP32",
    InputType.DOUBLES: "FP64",
    InputType.STRINGS: BYTES,
    InputType.BYTES: None,
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One declared tensor."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """The protocol's `$metadata_tensor`."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """Whether a tensor of `shape` fits this spec (-1 matches any size)."""
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's inputs and outputs; `declared` is False for the default signature."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    declared: bool = True


def default_signature(input_type: InputType) -> Signature:
    """The signature of a model deployed without one."""
    datatype = _INPUT_DATATYPES.get(input_type) or BYTES
    numeric = input_type.is_numeric
    input_spec = TensorSpec(DEFAULT_INPUT, datatype, (-1, -1) if numeric else (-1,))
    output_spec = TensorSpec(DEFAULT_OUTPUT, datatype, (-1,))
    return Signature((input_spec,), (output_spec,), declared=False)


def signature_for(input_type: InputType, text: str | None) -> Signature:
    """The signature of a model version: its stored JSON, or the default."""
    if text is None:
        return default_signature(input_type)
    return _parse_stored(text)


@functools.lru_cache(maxsize=512)
def _parse_stored(text: str) -> Signature:
    body = orjson.loads(text)
    return Signature(_specs(body, "inputs"), _specs(body, "outputs"))


def validate_signature(value: Any, input_type: InputType) -> str | None:
    """Check a signature given at deploy time (a dict or JSON text); return the JSON to
    store, or None. Raises InvalidRequest naming what is wrong."""
    if value is None:
        if input_type is InputType.TENSORS:
            raise InvalidRequest("a model of input type tensors needs a signature")
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"signature is not valid JSON: {exc}") from exc
    if not isinstance(value, dict) or set(value) - {"inputs", "outputs"}:
        raise InvalidRequest('signature must be an object with "inputs" and "outputs"')
    signature = Signature(_specs(value, "inputs"), _specs(value, "outputs"))
    _check_input_type(signature, input_type)
    body = {
        "inputs": [spec.to_dict() for spec in signature.inputs],
        "outputs": [spec.to_dict() for spec in signature.outputs],
    }
    return orjson.dumps(body).decode()


def _specs(body: dict[str, Any], key: str) -> tuple[TensorSpec, ...]:
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise InvalidRequest(f"signature {key!r} must be a non-empty list of tensors")
    specs = tuple(_spec(item, key) for item in items)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"signature {key!r} repeats a tensor name: {names}")
    return specs


def _spec(item: Any, key: str) -> TensorSpec:
    if not isinstance(item, dict) or set(item) - {"name", "datatype", "shape"}:
        raise InvalidRequest(f"each of the signature's {key} is {{name, datatype, shape}}")
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"a tensor of the signature's {key} has no name")
    if datatype not in DATATYPES and datatype != BYTES:
        known = ", ".join([*DATATYPES, BYTES])
        raise InvalidRequest(f"tensor {name!r}: datatype {datatype!r} is not one of {known}")
    if not isinstance(shape, list) or not shape or not all(_is_dim(dim) for dim in shape):
        raise InvalidRequest(
            f"tensor {name!r}: shape must be a non-empty list of sizes (-1 for any); "
            "its first dimension is the batch dimension"
        )
    return TensorSpec(name, str(datatype), tuple(shape))


def _is_dim(dim: Any) -> bool:
    return isinstance(dim, int) and not isinstance(dim, bool) and dim >= -1


def _check_input_type(signature: Signature, input_type: InputType) -> None:
    if input_type is InputType.TENSORS:
        return
    if len(signature.inputs) != 1:
        raise InvalidRequest(
            f"a model of input type {input_type.value} takes one input tensor; declare "
            "input_type tensors for a model with several"
        )
    wanted = _INPUT_DATATYPES[input_type]
    got = signature.inputs[0].datatype
    if wanted is not None and got != wanted:
        raise InvalidRequest(
            f"the input of a {input_type.value} model has datatype {wanted}, not {got}"
        )
