"""scikit-learn: any estimator or pipeline, saved with joblib (cloudpickle when it holds
local code, such as a FunctionTransformer of a function defined in a script)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from clipper.artifacts import build_artifact
from clipper.deployers.common import framework_environment
from clipper.environments.capture import capture_pickle, is_local_module
from clipper.environments.declare import EnvironmentArg
from clipper.exceptions import InvalidRequest

__all__ = ["sklearn_artifact"]

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
