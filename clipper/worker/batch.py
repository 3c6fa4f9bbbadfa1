"""The checks a worker applies to a model's outputs, shared with local testing
(`ClipperConnection.test_predict_function`)."""

from __future__ import annotations

from typing import Any

from clipper.core.exceptions import WrongNumberOfOutputs
from clipper.core.outputs import to_wire_value

__all__ = ["WrongNumberOfOutputs", "checked_outputs", "wire_outputs"]


def checked_outputs(outputs: Any, input_count: int) -> list[Any]:
    """`outputs` as a list of one output per input; WrongNumberOfOutputs otherwise."""
    listed = list(outputs) if outputs is not None else None
    if listed is None or len(listed) != input_count:
        got = "None" if listed is None else f"{len(listed)} outputs"
        raise WrongNumberOfOutputs(f"model returned {got} for a batch of {input_count} inputs")
    return listed


def wire_outputs(outputs: list[Any]) -> list[Any]:
    """Outputs as the worker sends them (see `clipper.core.outputs.to_wire_value`)."""
    return [to_wire_value(output) for output in outputs]
