"""LightGBM: a Booster (or a scikit-learn wrapper's booster) in LightGBM's text format."""

from __future__ import annotations

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

__all__ = ["lightgbm_artifact", "load_lightgbm"]

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


def load_lightgbm(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`lightgbm`: a Booster from its native text model file."""
    import lightgbm

    booster = lightgbm.Booster(
        model_file=str(artifact_file(path, metadata, "model_file", "model.txt"))
    )

    def predict(inputs: list[Any]) -> list[Any]:
        return output_rows(booster.predict(stack_inputs(inputs)))

    return predict
