"""The answer to one input, as every protocol renders it, and what a query may ask besides an
application: a model version by name (the Open Inference Protocol's `/v2/models/<model>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["ModelRef", "Prediction"]


class Prediction(NamedTuple):
    """One answer: a model output (or a combination of several), or the app's default
    output and why. A named tuple, not a frozen dataclass: one is made per answer, and a
    frozen dataclass's `__init__` (one `object.__setattr__` per field) costs about 2.5x.

    `models` names the versions that produced the output (`"name:version"`; empty for a
    default answer). `partial` marks an ensemble answer built from only the models that
    finished by the deadline. `outputs` holds each model's own output (`"name:version"` ->
    output) where an ensemble combined several, else None.
    """

    query_id: int
    output: Any
    is_default: bool = False
    explanation: str | None = None
    models: tuple[str, ...] = ()
    partial: bool = False
    outputs: Mapping[str, Any] | None = None


class ModelRef(NamedTuple):
    """A query for a model itself, not an application: answered by its `version` (None: the
    current one) with no policy, and no default output (a failed input answers None, with
    `is_default` set and the reason as its explanation).

    `use_cache` None follows the version's own setting; an app's selection and pipeline
    paths pass their route's (the app's and the version's settings together), and the
    app's `show_model_errors` as `show_errors`, and the app's priority class as `priority`
    (the highest a query for it may ask; 0 for a model asked directly). Those paths set
    `follow_rollout`: asked for the current version of a model under a canary rollout,
    the query goes the way the rollout's split says (a model asked directly does not)."""

    model_name: str
    use_cache: bool | None = None
    show_errors: bool = False
    priority: int = 0
    follow_rollout: bool = False
