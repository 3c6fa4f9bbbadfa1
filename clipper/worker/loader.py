"""Loading a model artifact directory into a batch predict function."""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from clipper.exceptions import ClipperError

__all__ = ["ModelLoadError", "PredictFunction", "load_model"]

PredictFunction = Callable[[list[Any]], Any]
METADATA_FILE = "clipper_model.json"


class ModelLoadError(ClipperError):
    """The artifact cannot be loaded in this environment."""


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _check_closure_environment(metadata: dict[str, Any]) -> None:
    wanted_python = str(metadata.get("python_version", ""))
    here_python = platform.python_version()
    if wanted_python and _major_minor(wanted_python) != _major_minor(here_python):
        raise ModelLoadError(
            f"closure was serialised on Python {wanted_python} but this worker runs "
            f"Python {here_python}; cloudpickle closures only load on the same minor version"
        )
    wanted_pickle = str(metadata.get("cloudpickle_version", ""))
    here_pickle = str(cloudpickle.__version__)
    if wanted_pickle and wanted_pickle.split(".")[0] != here_pickle.split(".")[0]:
        raise ModelLoadError(
            f"closure was serialised with cloudpickle {wanted_pickle} but this worker has "
            f"cloudpickle {here_pickle}"
        )


def _load_closure(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    _check_closure_environment(metadata)
    with open(path / "func.pkl", "rb") as file:
        func = cloudpickle.load(file)
    if not callable(func):
        raise ModelLoadError(f"func.pkl holds a {type(func).__name__}, not a callable")
    return func  # type: ignore[no-any-return]


def _load_directory(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    entry = path / str(metadata.get("entry", "predict.py"))
    function_name = str(metadata.get("function", "predict"))
    spec = importlib.util.spec_from_file_location("clipper_user_model", entry)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path))
    spec.loader.exec_module(module)
    func = getattr(module, function_name, None)
    if not callable(func):
        raise ModelLoadError(f"{entry} defines no callable {function_name!r}")
    return func  # type: ignore[no-any-return]


_LOADERS = {"python_closure": _load_closure, "python_directory": _load_directory}


def load_model(path: Path) -> PredictFunction:
    """Load the artifact in `path` and return its batch predict function."""
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelLoadError(f"{path} holds no {METADATA_FILE}")
    metadata = json.loads(metadata_path.read_text())
    loader = _LOADERS.get(str(metadata.get("kind")))
    if loader is None:
        raise ModelLoadError(f"unknown artifact kind {metadata.get('kind')!r} in {metadata_path}")
    return loader(path, metadata)
