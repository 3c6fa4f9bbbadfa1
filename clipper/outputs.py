"""Turning model outputs and default outputs into JSON values, as Clipper did and better."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

__all__ = ["parse_output_string", "to_json_value"]


def parse_output_string(text: str) -> Any:
    """Clipper's rule: an output string that parses as JSON becomes that value ("1" -> 1)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def to_json_value(value: Any) -> Any:
    """Make one model output JSON-compatible: numpy to Python, bytes to base64, str parsed."""
    if isinstance(value, str):
        return parse_output_string(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    return parse_output_string(str(value))
