"""MLServer: the custom runtimes (the sklearn model uses mlserver-sklearn). Under adaptive
batching a payload holds the batch stacked on the first axis; each answer has one row per
input row."""

from __future__ import annotations

from typing import Any

import numpy as np
import peer_model
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class NoopModel(MLModel):
    """Answers its first input tensor unchanged."""

    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = payload.inputs[0]
        output = ResponseOutput(
            name="output-0", shape=tensor.shape, datatype=tensor.datatype, data=tensor.data
        )
        return InferenceResponse(model_name=self.name, outputs=[output])


def _labels(model: MLModel, labels: list[int]) -> InferenceResponse:
    column = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
    output = NumpyCodec.encode_output(name="label", payload=column)
    return InferenceResponse(model_name=model.name, outputs=[output])


class CnnModel(MLModel):
    """The CNN over a [n, 12288] FP32 tensor."""

    async def load(self) -> bool:
        self.network: Any = peer_model.build_cnn()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0])
        return _labels(self, peer_model.predict_images(self.network, images))


class TextModel(MLModel):
    """The TF-IDF pipeline over a [n, 1] BYTES tensor."""

    async def load(self) -> bool:
        self.model: Any = peer_model.train_text_model()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        texts = StringCodec.decode_input(payload.inputs[0])
        return _labels(self, peer_model.predict_texts(self.model, texts))
