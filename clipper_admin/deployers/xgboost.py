"""Deploy an XGBoost model (saved in XGBoost's own format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clipper.artifacts._framework import require_numeric
from clipper.artifacts.xgboost import xgboost_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["deploy_xgboost_model"]


def deploy_xgboost_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    model: Any,
    method: str = "predict",
    labels: Sequence[str] | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
) -> None:
    """Deploy a Booster (answers `inplace_predict` of the stacked inputs) or a scikit-learn
    wrapper such as XGBClassifier (answers `<method>`: `predict`, `predict_proba`)."""
    require_numeric(input_type, "an XGBoost model")
    artifact = xgboost_artifact(
        model, method=method, environment=environment, pkgs_to_install=pkgs_to_install or ()
    )
    deploy_built(clipper_conn, name, version, input_type, artifact, "xgboost", labels,
                 num_replicas, batch_size)  # fmt: skip
