"""Losses per app, turned into rewards in [0, 1] (1 is best) that policies learn from.

`exact` (the default) compares an answer with the label for equality (labels, classes):
reward 1 when equal, else 0. `squared` is for numbers: reward `1 / (1 + (answer - label)^2)`,
so a perfect answer scores 1 and the reward falls smoothly with the error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from clipper.core.outputs import to_json_value

__all__ = ["LOSSES", "exact_match_reward", "squared_error_reward", "vote_key"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def exact_match_reward(output: Any, label: Any) -> float:
    """1.0 when the answer equals the label (numbers compare by value), else 0.0."""
    value = to_json_value(output)
    if _is_number(value) and _is_number(label):
        return 1.0 if float(value) == float(label) else 0.0
    return 1.0 if value == label else 0.0


def squared_error_reward(output: Any, label: Any) -> float:
    """`1 / (1 + squared error)`; numeric lists compare element-wise (summed); 0.0 when the
    answer is not a number (or not of the label's shape)."""
    try:
        error = np.asarray(to_json_value(output), dtype=float) - np.asarray(label, dtype=float)
        squared = float(np.sum(error * error))
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(squared) else 1.0 / (1.0 + squared)


LOSSES: dict[str, Callable[[Any, Any], float]] = {
    "exact": exact_match_reward,
    "squared": squared_error_reward,
}
"""Loss names (the `loss` policy parameter) and their reward functions."""


def vote_key(output: Any) -> Any:
    """A hashable stand-in for an answer, equal for equal answers (for voting)."""
    if output is None or isinstance(output, (str, int, float, bool, bytes)):
        return output
    value = to_json_value(output)
    if isinstance(value, (list, dict)):
        return repr(value)
    return value
