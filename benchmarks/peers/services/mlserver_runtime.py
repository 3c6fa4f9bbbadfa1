"""MLServer: the no-op model as a custom runtime (the sklearn model uses mlserver-sklearn)."""

from __future__ import annotations

from mlserver import MLModel
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
