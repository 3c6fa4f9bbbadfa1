"""scikit-learn: any estimator or pipeline, saved with joblib (cloudpickle when it holds
local code, such as a FunctionTransformer of a function defined in a script)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts._framework import framework_environment
from clipper.artifacts._loading import (
    PredictFunction,
    artifact_file,
    output_rows,
    read_pickle,
    stack_inputs,
)
from clipper.artifacts.format import build_artifact
from clipper.core.exceptions import InvalidRequest
from clipper.environments.capture import capture_pickle, is_local_module
from clipper.environments.declare import EnvironmentArg

__all__ = ["load_sklearn", "sklearn_artifact"]

FRAMEWORKS = {"sklearn": "scikit-learn", "joblib": "joblib", "numpy": "numpy"}


def sklearn_artifact(
    model: Any,
    *,
    method: str = "predict",
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """An `sklearn` artifact; the worker calls `model.<method>(batch)` (`predict`,
    `predict_proba`, `transform`, ...) on the stacked numeric inputs, or the list of
    strings for text pipelines, and answers one row per input."""
    if not callable(getattr(model, method, None)):
        raise InvalidRequest(f"{type(model).__name__} has no method {method!r}")
    pickled, modules = capture_pickle(model)
    if any(is_local_module(name) for name in modules):
        files, serializer = {"model.pkl": pickled}, "cloudpickle"
    else:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        files, serializer = {"model.joblib": buffer.getvalue()}, "joblib"
    declared = framework_environment(environment, modules, FRAMEWORKS, pkgs_to_install)
    return build_artifact(
        "sklearn", files, declared, model_file=next(iter(files)), serializer=serializer,
        method=method,
    )  # fmt: skip


def load_sklearn(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`sklearn`: an estimator or pipeline saved with joblib (or cloudpickle); calls
    `method` on the batch (numeric inputs stacked into one 2-D array, strings as a list)."""
    file = artifact_file(path, metadata, "model_file", "model.joblib")
    if metadata.get("serializer") == "cloudpickle":
        model = read_pickle(file, metadata)
    else:
        import joblib

        model = joblib.load(file)
    method = getattr(model, str(metadata.get("method", "predict")))

    def predict(inputs: list[Any]) -> list[Any]:
        return output_rows(method(stack_inputs(inputs)))

    return predict
