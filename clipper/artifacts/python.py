"""Plain Python models, three kinds: `python_closure` (a cloudpickled callable in
`func.pkl`), `python_class` (a cloudpickled class or instance in `model_class.pkl`, with a
`data/` directory for its `load`) and `python_directory` (a model directory's own files,
with `predict.py`). Each kind's builder (deploy side) and loader (worker side) sit together.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts._loading import (
    ModelLoadError,
    PredictFunction,
    artifact_file,
    as_batch_function,
    read_pickle,
)
from clipper.artifacts.format import artifact_metadata, build_artifact, directory_files
from clipper.artifacts.source_names import SOURCES_FIELD, record_sources, restore_sources
from clipper.artifacts.stepping import StepFunction, is_step_model
from clipper.core.exceptions import InvalidRequest
from clipper.environments.capture import capture_pickle, imports_of_directory
from clipper.environments.declare import EnvironmentArg, declare_environment

__all__ = [
    "CLASS_FILE",
    "CLOSURE_FILE",
    "DATA_DIR",
    "class_artifact",
    "closure_artifact",
    "directory_artifact",
    "load_class",
    "load_closure",
    "load_directory",
    "model_object_function",
]

CLOSURE_FILE = "func.pkl"
"""Name of the cloudpickled callable in a `python_closure` artifact."""

CLASS_FILE = "model_class.pkl"
"""Name of the cloudpickled class (or instance) in a `python_class` artifact."""

DATA_DIR = "data"
"""Directory of a `python_class` artifact passed to the model's `load(path)`."""


def closure_artifact(
    func: Callable[..., Any],
    *,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A gzip tar holding `func.pkl` (cloudpickled `func`) and `clipper_model.json`.

    Functions defined in local code (modules outside site-packages and the standard library,
    e.g. a test module or a script) are pickled by value, so a worker can load them without
    importing the module they came from. `environment` is `"capture"` (the installed
    versions of the packages `func` refers to), a requirements file, a list, or None.
    """
    pickled, modules = capture_pickle(func)
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    return build_artifact(
        "python_closure", {CLOSURE_FILE: pickled}, declared, **{SOURCES_FIELD: record_sources(func)}
    )


def class_artifact(
    model_class: type | object,
    *,
    model_data_path: str | Path | None = None,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A `python_class` artifact: a class (or an instance) with `predict(self, inputs)` and
    optionally `load(self, path)`, which the worker calls once with the artifact's `data`
    directory: a copy of `model_data_path` when given."""
    if not callable(getattr(model_class, "predict", None)):
        raise InvalidRequest(f"{model_class!r} has no predict(self, inputs) method")
    pickled, modules = capture_pickle(model_class)
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    files = {CLASS_FILE: pickled}
    if model_data_path is not None:
        files.update(directory_files(Path(model_data_path), prefix=DATA_DIR))
    sources = {SOURCES_FIELD: record_sources(model_class)}
    return build_artifact("python_class", files, declared, data_dir=DATA_DIR, **sources)


def directory_artifact(
    model_dir: Path,
    *,
    entry: str = "predict.py",
    function: str | None = None,
    environment: EnvironmentArg | None = None,
    pkgs_to_install: Sequence[str] = (),
) -> dict[str, Any]:
    """Check a `python_directory` model and return its metadata (not yet written anywhere).

    `model_dir` must contain `entry` defining, at its top level, `function(inputs)` or a
    class with a `predict(self, inputs)` method (found by itself when `function` is None:
    a function named `predict`, else the one class with a `predict` method). The
    environment defaults to the directory's `requirements.txt`, else to the installed
    versions of the packages its `.py` files import.
    """
    entry_path = model_dir / entry
    if not entry_path.is_file():
        raise InvalidRequest(f"Model directory {model_dir} has no {entry}")
    target = _entry_point(entry_path, function)
    requirements_file = model_dir / "requirements.txt"
    if environment is None:
        environment = requirements_file if requirements_file.is_file() else "capture"
    modules = imports_of_directory(model_dir) if environment == "capture" else set()
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    return {**artifact_metadata("python_directory", declared), "entry": entry, **target}


def model_object_function(model: Any, data_path: Path | None) -> PredictFunction:
    """The batch function of a model class or instance: instantiate a class with no
    arguments, call `load(data_path)` once if it has one, then `predict` per batch (its
    `stream` generator instead, when it has one: a streaming model; its `start` and `step`
    when it has both: a step model, see clipper.artifacts.stepping)."""
    instance = model() if isinstance(model, type) else model
    if is_step_model(instance):
        _load_data(instance, data_path)
        return StepFunction(instance)
    predict = getattr(instance, "stream", None)
    if not callable(predict):
        predict = getattr(instance, "predict", None)
    if not callable(predict):
        raise ModelLoadError(f"{type(instance).__name__} has no predict(self, inputs) method")
    _load_data(instance, data_path)
    return as_batch_function(predict)


def _load_data(instance: Any, data_path: Path | None) -> None:
    load = getattr(instance, "load", None)
    if callable(load):
        load(str(data_path) if data_path is not None else None)


def load_closure(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`python_closure`: `func.pkl` holds the callable."""
    func = read_pickle(artifact_file(path, metadata, "file", CLOSURE_FILE), metadata)
    restore_sources(func, metadata.get(SOURCES_FIELD))
    if (isinstance(func, type) and hasattr(func, "predict")) or is_step_model(func):
        return model_object_function(func, None)
    if not callable(func):
        raise ModelLoadError(f"func.pkl holds a {type(func).__name__}, not a callable")
    return as_batch_function(func)


def load_class(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`python_class`: `model_class.pkl` holds a class or instance; `data/` goes to load."""
    model = read_pickle(artifact_file(path, metadata, "class_file", CLASS_FILE), metadata)
    restore_sources(model, metadata.get(SOURCES_FIELD))
    return model_object_function(model, path / str(metadata.get("data_dir", DATA_DIR)))


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


def _entry_point(path: Path, name: str | None) -> dict[str, str]:
    """`{"function": name}` or `{"class": name}`: what the worker calls in `path`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise InvalidRequest(f"{path} is not valid Python: {exc}") from exc
    functions, classes, other = set(), {}, set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
        elif isinstance(node, ast.ClassDef):
            methods = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            classes[node.name] = "predict" in methods
        else:
            other |= _bound_names(node)
    if name is None:
        with_predict = [cls for cls, has in classes.items() if has]
        if "predict" in functions or (not with_predict and "predict" in other):
            return {"function": "predict"}
        if len(with_predict) == 1:
            return {"class": with_predict[0]}
        raise InvalidRequest(
            f"{path} does not define predict(inputs) nor exactly one class with a predict "
            f"method (found classes: {', '.join(with_predict) or 'none'}); name the entry point"
        )
    if name in classes:
        return {"class": name}
    if name in functions or name in other:
        return {"function": name}
    raise InvalidRequest(f"{path} does not define {name}")


def _bound_names(node: ast.stmt) -> set[str]:
    """Names bound by a top-level assignment or import."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {target.id for target in targets if isinstance(target, ast.Name)}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return set()
