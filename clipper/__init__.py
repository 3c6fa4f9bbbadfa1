"""Clipper: a low-latency, general-purpose prediction-serving system."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clipper.exceptions import ClipperError
from clipper.types import InputType, ModelId, ReplicaId

if TYPE_CHECKING:
    from clipper.config import Settings

__all__ = ["ClipperError", "InputType", "ModelId", "ReplicaId", "Settings", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Settings (pydantic) is imported on first use: a worker process imports `clipper`
    # but needs only its worker packages (see clipper.environments.manager.WORKER_PACKAGES).
    if name == "Settings":
        from clipper.config import Settings

        return Settings
    raise AttributeError(f"module 'clipper' has no attribute {name!r}")
