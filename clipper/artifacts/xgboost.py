"""XGBoost: a Booster, or a scikit-learn wrapper such as XGBClassifier, saved in XGBoost's
own format (UBJSON)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts._framework import framework_environment
from clipper.artifacts._loading import (
    PredictFunction,
    artifact_file,
    output_rows,
    stack_inputs,
)
from clipper.artifacts.format import build_artifact
from clipper.core.exceptions import InvalidRequest
from clipper.environments.declare import EnvironmentArg

__all__ = ["load_xgboost", "xgboost_artifact"]

FRAMEWORKS = {"xgboost": "xgboost", "numpy": "numpy"}


def xgboost_artifact(
    model: Any,
    *,
    method: str = "predict",
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """An `xgboost` artifact. A Booster answers `inplace_predict` on the stacked inputs;
    a wrapper is rebuilt as its class and answers `<method>` (`predict`, `predict_proba`)."""
    import xgboost

    if isinstance(model, xgboost.Booster):
        estimator = "Booster"
    elif isinstance(model, xgboost.XGBModel) and hasattr(xgboost, type(model).__name__):
        estimator = type(model).__name__
    else:
        raise InvalidRequest(f"expected an xgboost Booster or XGBModel, got {type(model)}")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.ubj"
        model.save_model(str(path))
        files = {"model.ubj": path.read_bytes()}
    declared = framework_environment(environment, (), FRAMEWORKS, pkgs_to_install)
    return build_artifact(
        "xgboost", files, declared, model_file="model.ubj", estimator=estimator, method=method
    )


def load_xgboost(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`xgboost`: a native model file; a Booster predicts in place, a scikit-learn wrapper
    (`XGBClassifier`, ...) is rebuilt and its `method` called."""
    import xgboost

    file = artifact_file(path, metadata, "model_file", "model.ubj")
    estimator = str(metadata.get("estimator", "Booster"))
    if estimator == "Booster":
        booster = xgboost.Booster(model_file=str(file))

        def predict(inputs: list[Any]) -> list[Any]:
            return output_rows(booster.inplace_predict(stack_inputs(inputs)))

        return predict
    model = getattr(xgboost, estimator)()
    model.load_model(str(file))
    method = getattr(model, str(metadata.get("method", "predict")))
    return lambda inputs: output_rows(method(stack_inputs(inputs)))
