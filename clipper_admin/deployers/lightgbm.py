"""Deploy a LightGBM model (saved in LightGBM's text format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clipper.artifacts._framework import require_numeric
from clipper.artifacts.lightgbm import lightgbm_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["deploy_lightgbm_model"]


def deploy_lightgbm_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    model: Any,
    labels: Sequence[str] | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
) -> None:
    """Deploy a Booster (or an LGBMModel's booster); each batch answers `Booster.predict`
    of the stacked inputs (for classifiers: probabilities)."""
    require_numeric(input_type, "a LightGBM model")
    artifact = lightgbm_artifact(
        model, environment=environment, pkgs_to_install=pkgs_to_install or ()
    )
    deploy_built(clipper_conn, name, version, input_type, artifact, "lightgbm", labels,
                 num_replicas, batch_size)  # fmt: skip
