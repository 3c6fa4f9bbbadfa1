"""TorchServe: a custom handler (module-level `handle`) for every workload; the workload comes
from the model's name (`noop`, `sklearn`, `sklearn-batch`, `cnn`, `text`)."""

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


def _load(workload: str) -> Any:
    """The batch predict function of `workload`."""
    if workload == "noop":
        return list
    if workload == "cnn":
        network = peer_model.build_cnn()
        return lambda rows: peer_model.predict_images(network, rows)
    if workload == "text":
        model = peer_model.train_text_model()
        return lambda rows: peer_model.predict_texts(model, rows)
    trained = peer_model.train_sklearn_model()
    return lambda rows: peer_model.predict_rows(trained, rows)


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[Any] | None:
    """One answer per request of the batch, in order; `data` is None once, at load."""
    global _model
    if data is None or _model is None:
        _model = _load(context.manifest["model"]["modelName"])
        if data is None:
            return None
    return [{"output": answer} for answer in _model([_input(item) for item in data])]
