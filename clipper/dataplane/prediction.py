"""The answer to one input, as every protocol renders it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Prediction"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: a model output (or a combination of several), or the app's default
    output and why.

    `models` names the versions that produced the output (`"name:version"`; empty for a
    default answer). `partial` marks an ensemble answer built from only the models that
    finished by the deadline.
    """

    query_id: int
    output: Any
    is_default: bool = False
    explanation: str | None = None
    models: tuple[str, ...] = ()
    partial: bool = False
