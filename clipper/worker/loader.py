"""Loading a model artifact directory into a batch predict function."""

from __future__ import annotations

import json
from pathlib import Path

from clipper.worker.loaders import LOADERS
from clipper.worker.loaders.base import ModelLoadError, PredictFunction

__all__ = ["KINDS", "ModelLoadError", "PredictFunction", "load_model"]

METADATA_FILE = "clipper_model.json"
KINDS = tuple(LOADERS)
"""The artifact kinds a worker loads."""


def load_model(path: Path) -> PredictFunction:
    """Load the artifact in `path` and return its batch predict function.

    ModelLoadError when the artifact is incomplete or was made for another environment;
    whatever the model's own code raises (an import, its `load`) propagates as it is.
    """
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelLoadError(f"{path} holds no {METADATA_FILE}")
    try:
        metadata = json.loads(metadata_path.read_text())
    except ValueError as exc:
        raise ModelLoadError(f"{metadata_path} is not valid JSON: {exc}") from exc
    loader = LOADERS.get(str(metadata.get("kind")))
    if loader is None:
        known = ", ".join(KINDS)
        raise ModelLoadError(
            f"unknown artifact kind {metadata.get('kind')!r} in {metadata_path} (known: {known})"
        )
    return loader(path, metadata)
