"""Value types shared across the package: input types, model ids, name validation."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

from clipper.core.exceptions import InvalidInputType, InvalidName

__all__ = [
    "InputBuffer",
    "InputType",
    "ModelId",
    "ReplicaId",
    "parse_input_type",
    "validate_name",
    "validate_version",
]

InputBuffer = bytes | memoryview
"""One query input, encoded as the worker receives it: bytes, or a read-only byte view
(format "B", hashable) of a received tensor's memory, which is not copied on the way."""

_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 63
"""Longest app, model or version name: a DNS label's (names end up in paths and labels)."""


class InputType(str, enum.Enum):  # noqa: UP042 (str() and f-strings of members unchanged)
    """The five input types of Clipper, by their stored (canonical) names, and `tensors`:
    named tensors (a dict of numpy arrays per input) for models with a declared Open
    Inference Protocol signature; such models are queried through `/v2` and gRPC only."""

    BYTES = "bytes"
    INTEGERS = "integers"
    FLOATS = "floats"
    DOUBLES = "doubles"
    STRINGS = "strings"
    TENSORS = "tensors"

    @property
    def is_numeric(self) -> bool:
        """True for the types whose inputs are numpy arrays."""
        return self in (InputType.INTEGERS, InputType.FLOATS, InputType.DOUBLES)


_INPUT_TYPE_ALIASES: dict[str, InputType] = {
    **dict.fromkeys(("bytes", "byte", "b"), InputType.BYTES),
    **dict.fromkeys(("integers", "ints", "integer", "int", "i"), InputType.INTEGERS),
    **dict.fromkeys(("floats", "float", "f"), InputType.FLOATS),
    **dict.fromkeys(("doubles", "double", "d"), InputType.DOUBLES),
    **dict.fromkeys(("strings", "string", "str", "strs", "s"), InputType.STRINGS),
    **dict.fromkeys(("tensors", "tensor"), InputType.TENSORS),
}


def parse_input_type(value: object) -> InputType:
    """Map any of Clipper's spellings of an input type to its canonical member."""
    if isinstance(value, InputType):
        return value
    if isinstance(value, str):
        found = _INPUT_TYPE_ALIASES.get(value.strip().lower())
        if found is not None:
            return found
    allowed = ", ".join(sorted(_INPUT_TYPE_ALIASES))
    raise InvalidInputType(f"Invalid input type {value!r}; expected one of: {allowed}")


def validate_name(name: object, what: str = "name") -> str:
    """Return `name` if it matches Clipper's name pattern (at most MAX_NAME_LENGTH long),
    else raise InvalidName."""
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"Invalid {what} {name[:80]!r}...: at most {MAX_NAME_LENGTH} characters")
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise InvalidName(
            f"Invalid {what} {name!r}: must match {_NAME_PATTERN.pattern} "
            "(lowercase letters, digits and dashes, starting and ending with a letter or digit)"
        )
    return name


def validate_version(version: object) -> str:
    """Stringify a version (Clipper accepted ints) and validate it like a name."""
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise InvalidName(f"Invalid version {version!r}: must be a string or an integer")
    return validate_name(str(version), "version")


class ModelId(NamedTuple):
    """One model version: the unit that has a batch queue and replicas. A named tuple:
    it keys the hot path's dictionaries, and tuples hash and compare in C."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class ReplicaId:
    """One replica (worker process) of a model version."""

    model: ModelId
    replica: int

    def __str__(self) -> str:
        return f"{self.model}:{self.replica}"
