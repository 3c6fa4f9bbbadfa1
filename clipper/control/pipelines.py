"""Type checks of pipelines (apps whose models answer in turn), inside a registry transaction.

A pipeline `[m1, m2, ..., mn]` of an app is well typed when m1 takes the app's input type
and every version of each step but the last declares an `output_type` equal to the input
type of the next step. The checks run when the pipeline is defined and when a version of
a model used in a pipeline is added, so a pipeline never silently breaks.
"""

from __future__ import annotations

import json
import sqlite3

from clipper.control import registry_sql as q
from clipper.core.exceptions import Conflict, InvalidRequest, ModelNotFound

__all__ = ["check_pipeline", "check_step_output"]


def check_pipeline(conn: sqlite3.Connection, app: str, app_type: str, models: list[str]) -> None:
    """Raise ModelNotFound or Conflict unless `models` is a well-typed pipeline for `app`."""
    if len(set(models)) != len(models):
        raise InvalidRequest("a pipeline names each model at most once")
    expected, source = app_type, f"application '{app}'"
    for index, model in enumerate(models):
        model_type = q.model_input_type(conn, model)
        if model_type is None:
            raise ModelNotFound(f"No model with name '{model}'")
        if model_type != expected:
            raise Conflict(
                f"Pipeline type mismatch: {source} gives '{expected}' but model '{model}' "
                f"takes '{model_type}'"
            )
        if index + 1 < len(models):
            expected = _declared_output(conn, model)
            source = f"model '{model}' outputs"


def _declared_output(conn: sqlite3.Connection, model: str) -> str:
    outputs = q.model_output_types(conn, model)
    if None in outputs:
        raise Conflict(
            f"Model '{model}' does not declare its output type; deploy it with output_type "
            "to use it before another step of a pipeline"
        )
    if len(outputs) != 1:
        raise Conflict(f"The versions of model '{model}' declare different output types")
    return str(next(iter(outputs)))


def check_step_output(conn: sqlite3.Connection, model: str, output_type: str | None) -> None:
    """Raise Conflict if a new version of `model` with `output_type` would break a pipeline
    that feeds the model's outputs to a next step."""
    rows = conn.execute("SELECT name, pipeline FROM apps WHERE pipeline != '[]'")
    for app, encoded in rows.fetchall():
        steps = json.loads(encoded)
        if model not in steps[:-1]:
            continue
        following = steps[steps.index(model) + 1]
        needed = q.model_input_type(conn, following)
        if needed is not None and output_type != needed:
            raise Conflict(
                f"Model '{model}' feeds '{following}' (taking '{needed}') in the pipeline of "
                f"application '{app}'; a new version must declare output_type '{needed}'"
            )
