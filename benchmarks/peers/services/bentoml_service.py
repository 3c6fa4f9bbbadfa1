"""BentoML: `bentoml serve bentoml_service:<Noop|Sklearn|SklearnBatch|Cnn|Text>`."""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np
import peer_model

BATCH_SIZE, MAX_LATENCY_MS = 32, 1000
CNN_MAX_LATENCY_MS = 10_000
"""The CNN's batch of 32 takes up to a second on 2 busy cores: past 1 s BentoML sheds load."""
# One worker, as every system gets; no per-request access log (a production setting).
CONFIG: dict[str, Any] = {"workers": 1, "logging": {"access": {"enabled": False}}}


@bentoml.service(**CONFIG)
class Noop:
    @bentoml.api
    async def predict(self, input: list[float]) -> dict[str, Any]:
        return {"output": input}


@bentoml.service(**CONFIG)
class Sklearn:
    def __init__(self) -> None:
        self.model = peer_model.train_sklearn_model()

    @bentoml.api
    async def predict(self, input: list[float]) -> dict[str, Any]:
        return {"output": peer_model.predict_rows(self.model, [input])[0]}


@bentoml.service(**CONFIG)
class SklearnBatch:
    def __init__(self) -> None:
        self.model = peer_model.train_sklearn_model()

    @bentoml.api(batchable=True, max_batch_size=BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    async def predict(self, input: np.ndarray) -> np.ndarray:
        return np.asarray(peer_model.predict_rows(self.model, input))


@bentoml.service(**CONFIG)
class Cnn:
    def __init__(self) -> None:
        self.network = peer_model.build_cnn()

    @bentoml.api(batchable=True, max_batch_size=BATCH_SIZE, max_latency_ms=CNN_MAX_LATENCY_MS)
    async def predict(self, input: np.ndarray) -> np.ndarray:
        return np.asarray(peer_model.predict_images(self.network, input))


@bentoml.service(**CONFIG)
class Text:
    def __init__(self) -> None:
        self.model = peer_model.train_text_model()

    @bentoml.api(batchable=True, max_batch_size=BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    async def predict(self, input: list[str]) -> list[int]:
        return peer_model.predict_texts(self.model, input)
