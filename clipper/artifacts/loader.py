"""Loading a model artifact directory into a batch predict function (the worker's side).

Each kind's loader lives in the kind's module, imported only when an artifact of that kind
is loaded: a worker imports its own framework and no other.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import cast

from clipper.artifacts._loading import Loader, ModelLoadError, PredictFunction
from clipper.artifacts.format import METADATA_FILE

__all__ = ["KINDS", "ModelLoadError", "PredictFunction", "load_model", "loader_of"]

_LOADERS: dict[str, tuple[str, str]] = {
    "python_closure": ("clipper.artifacts.python", "load_closure"),
    "python_class": ("clipper.artifacts.python", "load_class"),
    "python_directory": ("clipper.artifacts.python", "load_directory"),
    "sklearn": ("clipper.artifacts.sklearn", "load_sklearn"),
    "pytorch": ("clipper.artifacts.pytorch", "load_pytorch"),
    "onnx": ("clipper.artifacts.onnx", "load_onnx"),
    "xgboost": ("clipper.artifacts.xgboost", "load_xgboost"),
    "lightgbm": ("clipper.artifacts.lightgbm", "load_lightgbm"),
    "transformers": ("clipper.artifacts.transformers", "load_transformers"),
}
"""Each artifact kind's loader: (module, function)."""

KINDS = tuple(_LOADERS)
"""The artifact kinds a worker loads."""


def loader_of(kind: str) -> Loader | None:
    """The loader of `kind`, its module imported on first use; None for an unknown kind."""
    where = _LOADERS.get(kind)
    if where is None:
        return None
    module_name, function_name = where
    return cast(Loader, getattr(importlib.import_module(module_name), function_name))


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
    loader = loader_of(str(metadata.get("kind")))
    if loader is None:
        known = ", ".join(KINDS)
        raise ModelLoadError(
            f"unknown artifact kind {metadata.get('kind')!r} in {metadata_path} (known: {known})"
        )
    return loader(path, metadata)
