"""Clipper: a low-latency, general-purpose prediction-serving system."""

from __future__ import annotations

from clipper.config import Settings
from clipper.exceptions import ClipperError
from clipper.types import InputType, ModelId, ReplicaId

__all__ = ["ClipperError", "InputType", "ModelId", "ReplicaId", "Settings", "__version__"]

__version__ = "0.1.0"
