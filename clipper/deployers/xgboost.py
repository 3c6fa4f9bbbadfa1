"""XGBoost: a Booster, or a scikit-learn wrapper such as XGBClassifier, saved in XGBoost's
own format (UBJSON)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts import build_artifact
from clipper.deployers.common import framework_environment
from clipper.environments.declare import EnvironmentArg
from clipper.exceptions import InvalidRequest

__all__ = ["xgboost_artifact"]

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
