"""Deploy a scikit-learn estimator or pipeline (saved with joblib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clipper.artifacts.sklearn import sklearn_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["create_endpoint", "deploy_sklearn_model"]


def deploy_sklearn_model(
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
    """Deploy `model`; each batch answers `model.<method>(X)` (`predict`, `predict_proba`,
    ...) with X the stacked numeric inputs (one row each) or the list of strings."""
    artifact = sklearn_artifact(
        model, method=method, environment=environment, pkgs_to_install=pkgs_to_install or ()
    )
    deploy_built(clipper_conn, name, version, input_type, artifact, "sklearn", labels,
                 num_replicas, batch_size)  # fmt: skip


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    model: Any,
    method: str = "predict",
    default_output: str = "None",
    version: Version = 1,
    slo_micros: int = 3000000,
    num_replicas: int | None = None,
    batch_size: int = -1,
) -> None:
    """Register app `name`, deploy `model` as model `name`, and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_sklearn_model(clipper_conn, name, version, input_type, model, method,
                         num_replicas=num_replicas, batch_size=batch_size)  # fmt: skip
    clipper_conn.link_model_to_app(name, name)
