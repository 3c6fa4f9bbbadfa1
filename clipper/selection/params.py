"""Reading and validating policy parameters (JSON values given to `set_app_policy`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from clipper.core.exceptions import InvalidRequest

__all__ = ["choice", "flag", "model_names", "number", "optional_number", "weights"]

Params = Mapping[str, Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(params: Params, key: str, default: float, low: float, high: float) -> float:
    """A number in [low, high] (default when absent or null)."""
    value = params.get(key)
    if value is None:
        return default
    if not _is_number(value) or not low <= value <= high:
        raise InvalidRequest(f"policy parameter {key!r} must be a number in [{low}, {high}]")
    return float(value)


def optional_number(params: Params, key: str, low: float, high: float) -> float | None:
    """A number in [low, high], or None when absent or null."""
    return None if params.get(key) is None else number(params, key, low, low, high)


def choice(params: Params, key: str, default: str, allowed: Collection[str]) -> str:
    """One of `allowed` (default when absent or null)."""
    value = params.get(key, default)
    value = default if value is None else value
    if value not in allowed:
        names = ", ".join(sorted(allowed))
        raise InvalidRequest(f"policy parameter {key!r} must be one of: {names}")
    return str(value)


def flag(params: Params, key: str, default: bool) -> bool:
    """A boolean (default when absent or null)."""
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"policy parameter {key!r} must be true or false")
    return value


def model_names(params: Params, key: str) -> tuple[str, ...] | None:
    """A model name or a list of them; None when absent or null."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"policy parameter {key!r} must be a model name or a list of them")
    return tuple(value)


def weights(params: Params, key: str) -> dict[str, float] | None:
    """`{model: weight}` with non-negative weights, or None when absent or null."""
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        _is_number(weight) and weight >= 0 for weight in value.values()
    ):
        raise InvalidRequest(
            f"policy parameter {key!r} must map model names to non-negative numbers"
        )
    if value and not any(value.values()):
        raise InvalidRequest(f"policy parameter {key!r} needs at least one positive weight")
    return {str(model): float(weight) for model, weight in value.items()}
