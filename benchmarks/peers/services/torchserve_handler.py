"""TorchServe: a custom handler (module-level `handle`) for the three workloads; the workload
comes from the model's name (`noop`, `sklearn`, `sklearn-batch`)."""

from __future__ import annotations

import json
from typing import Any

import peer_model

_model: Any = None


def _input(item: dict[str, Any]) -> Any:
    body = item.get("body") if item.get("body") is not None else item.get("data")
    if isinstance(body, (bytes, bytearray)):
        body = json.loads(body)
    return body["input"]  # type: ignore[index]


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[Any] | None:
    """One answer per request of the batch, in order; `data` is None once, at load."""
    global _model
    noop = context.manifest["model"]["modelName"] == "noop"
    if data is None:
        _model = None if noop else peer_model.train_sklearn_model()
        return None
    rows = [_input(item) for item in data]
    if noop:
        return [{"output": row} for row in rows]
    return [{"output": label} for label in peer_model.predict_rows(_model, rows)]
