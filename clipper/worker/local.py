"""Running a model in this process exactly as a worker would: the server's JSON input
validation and encoding, the worker's decoding, class instantiation, `load`, async
predict, and the worker's output checks. For trying a model before deploying it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clipper.artifacts._loading import PredictFunction, as_batch_function
from clipper.artifacts.python import model_object_function
from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import encode_input
from clipper.core.types import InputType
from clipper.rpc.protocol import decode_inputs
from clipper.worker.batch import checked_outputs, wire_outputs

__all__ = ["local_predict_function", "query_inputs", "run_query_locally"]


def query_inputs(query: Mapping[str, Any]) -> list[Any]:
    """The JSON inputs of a query dict: `{"input": x}` or `{"input_batch": [x, ...]}`."""
    keys = set(query) & {"input", "input_batch"}
    if len(keys) != 1:
        raise InvalidInput("The query needs exactly one of the keys 'input' and 'input_batch'")
    if "input" in query:
        return [query["input"]]
    batch = query["input_batch"]
    if not isinstance(batch, list):
        raise InvalidInput("'input_batch' must be a list of inputs")
    return batch


def local_predict_function(
    model: Any, model_data_path: str | Path | None = None
) -> PredictFunction:
    """The batch function a worker would make of `model`: a function (sync or async) as
    it is; a class or an instance with `predict` loaded (`load(model_data_path)`) once."""
    is_model_class = isinstance(model, type) and hasattr(model, "predict")
    is_instance = not inspect.isroutine(model) and callable(getattr(model, "predict", None))
    if is_model_class or is_instance:
        return model_object_function(model, Path(model_data_path) if model_data_path else None)
    return as_batch_function(model)


def run_query_locally(
    query: Mapping[str, Any],
    model: Any,
    input_type: InputType,
    model_data_path: str | Path | None = None,
) -> list[Any]:
    """Answer a query dict with `model` here; returns the outputs as the worker sends them
    (InvalidInput for inputs the server would refuse, WrongNumberOfOutputs as the worker)."""
    buffers = [encode_input(value, input_type) for value in query_inputs(query)]
    inputs = decode_inputs(input_type, [len(b) for b in buffers], memoryview(b"".join(buffers)))
    predict = local_predict_function(model, model_data_path)
    return wire_outputs(checked_outputs(predict(inputs), len(inputs)))
