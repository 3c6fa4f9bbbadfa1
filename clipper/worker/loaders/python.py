"""Loaders of plain Python models: closures, classes and model directories."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from clipper.worker.loaders.base import (
    ModelLoadError,
    PredictFunction,
    artifact_file,
    as_batch_function,
    read_pickle,
)

__all__ = ["load_class", "load_closure", "load_directory", "model_object_function"]


def model_object_function(model: Any, data_path: Path | None) -> PredictFunction:
    """The batch function of a model class or instance: instantiate a class with no
    arguments, call `load(data_path)` once if it has one, then `predict` per batch."""
    instance = model() if isinstance(model, type) else model
    predict = getattr(instance, "predict", None)
    if not callable(predict):
        raise ModelLoadError(f"{type(instance).__name__} has no predict(self, inputs) method")
    load = getattr(instance, "load", None)
    if callable(load):
        load(str(data_path) if data_path is not None else None)
    return as_batch_function(predict)


def load_closure(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`python_closure`: `func.pkl` holds the callable."""
    func = read_pickle(artifact_file(path, metadata, "file", "func.pkl"), metadata)
    if not callable(func):
        raise ModelLoadError(f"func.pkl holds a {type(func).__name__}, not a callable")
    if isinstance(func, type) and hasattr(func, "predict"):
        return model_object_function(func, None)
    return as_batch_function(func)


def load_class(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`python_class`: `model_class.pkl` holds a class or instance; `data/` goes to load."""
    model = read_pickle(artifact_file(path, metadata, "class_file", "model_class.pkl"), metadata)
    return model_object_function(model, path / str(metadata.get("data_dir", "data")))


def load_directory(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`python_directory`: import `entry` with the artifact on sys.path; call its function,
    or instantiate its class and `load(artifact directory)` it."""
    entry = artifact_file(path, metadata, "entry", "predict.py")
    spec = importlib.util.spec_from_file_location("clipper_user_model", entry)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path))
    spec.loader.exec_module(module)
    class_name = metadata.get("class")
    if class_name is not None:
        model_class = getattr(module, str(class_name), None)
        if not isinstance(model_class, type):
            raise ModelLoadError(f"{entry} defines no class {class_name!r}")
        return model_object_function(model_class, path)
    function_name = str(metadata.get("function", "predict"))
    func = getattr(module, function_name, None)
    if not callable(func):
        raise ModelLoadError(f"{entry} defines no callable {function_name!r}")
    return as_batch_function(func)
