"""LightGBM: a Booster (or a scikit-learn wrapper's booster) in LightGBM's text format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clipper.artifacts import build_artifact
from clipper.deployers.common import framework_environment
from clipper.environments.declare import EnvironmentArg
from clipper.exceptions import InvalidRequest

__all__ = ["lightgbm_artifact"]

FRAMEWORKS = {"lightgbm": "lightgbm", "numpy": "numpy"}


def lightgbm_artifact(
    model: Any,
    *,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A `lightgbm` artifact: the worker answers `Booster.predict` on the stacked inputs
    (for a classifier wrapper, its booster's probabilities rather than class labels)."""
    booster = getattr(model, "booster_", model)
    to_string = getattr(booster, "model_to_string", None)
    if not callable(to_string):
        raise InvalidRequest(f"expected a lightgbm Booster or LGBMModel, got {type(model)}")
    files = {"model.txt": str(to_string()).encode()}
    declared = framework_environment(environment, (), FRAMEWORKS, pkgs_to_install)
    return build_artifact("lightgbm", files, declared, model_file="model.txt")
