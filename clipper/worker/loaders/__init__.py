"""One loader per artifact kind; `clipper.worker.loader.load_model` picks by `kind`."""

from __future__ import annotations

from clipper.worker.loaders.base import Loader
from clipper.worker.loaders.frameworks import (
    load_lightgbm,
    load_onnx,
    load_pytorch,
    load_sklearn,
    load_xgboost,
)
from clipper.worker.loaders.python import load_class, load_closure, load_directory

__all__ = ["LOADERS"]

LOADERS: dict[str, Loader] = {
    "python_closure": load_closure,
    "python_class": load_class,
    "python_directory": load_directory,
    "sklearn": load_sklearn,
    "pytorch": load_pytorch,
    "onnx": load_onnx,
    "xgboost": load_xgboost,
    "lightgbm": load_lightgbm,
}
"""Every artifact kind the worker can load."""
