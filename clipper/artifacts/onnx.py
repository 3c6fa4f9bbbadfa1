"""ONNX Runtime: a model in ONNX's own format, or a PyTorch module exported to it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipper.artifacts._framework import framework_environment
from clipper.artifacts._loading import (
    PredictFunction,
    artifact_file,
    output_rows,
    read_pickle,
    stack_inputs,
)
from clipper.artifacts.format import build_artifact
from clipper.core.exceptions import InvalidRequest
from clipper.environments.capture import capture_pickle
from clipper.environments.declare import EnvironmentArg

__all__ = ["export_pytorch", "load_onnx", "onnx_artifact", "onnx_bytes", "onnx_providers"]

FRAMEWORKS = {"onnxruntime": "onnxruntime", "numpy": "numpy"}


def onnx_bytes(model: Any) -> bytes:
    """The serialised ONNX model: from bytes, a file path or an `onnx.ModelProto`."""
    if isinstance(model, bytes):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise InvalidRequest(f"no ONNX model file at {path}")
        return path.read_bytes()
    serialize = getattr(model, "SerializeToString", None)
    if not callable(serialize):
        raise InvalidRequest(f"expected ONNX bytes, a path or a ModelProto, got {type(model)}")
    return bytes(serialize())


def export_pytorch(model: Any, example_inputs: Any) -> bytes:
    """Export a PyTorch module to ONNX (torch.export-based exporter), the first dimension
    (the batch) dynamic. `example_inputs` is a tensor, an array or a list of inputs."""
    import numpy as np
    import torch

    example = torch.as_tensor(np.asarray(example_inputs))
    parameter = next(model.parameters(), None)
    if parameter is not None:
        example = example.to(dtype=parameter.dtype)
    if example.ndim == 1:
        example = example.unsqueeze(0)
    if example.shape[0] < 2:  # a batch of one would specialise the batch dimension
        example = example.repeat(2, *([1] * (example.ndim - 1)))
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # the exporter's own deprecation chatter
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, verbose=False, input_names=["input"],
                output_names=["output"], dynamic_shapes=({0: torch.export.Dim("batch")},),
            )  # fmt: skip
    finally:
        model.train(was_training)
    if program is None:
        raise InvalidRequest("torch.onnx.export returned no program")
    return bytes(program.model_proto.SerializeToString())


def onnx_artifact(
    model: Any,
    func: Callable[[Any, list[Any]], Any] | None = None,
    *,
    output_names: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """An `onnx` artifact. The worker opens an ONNX Runtime session and feeds the stacked
    inputs to the model's first input; each input gets its row of the first output (or a
    dict of its rows of `output_names`). With `func`, it calls `func(session, inputs)`."""
    files = {"model.onnx": onnx_bytes(model)}
    fields: dict[str, Any] = {"model_file": "model.onnx"}
    modules: set[str] = set()
    if output_names:
        fields["output_names"] = list(output_names)
    if func is not None:
        files["func.pkl"], modules = capture_pickle(func)
        fields["func_file"] = "func.pkl"
    declared = framework_environment(environment, modules, FRAMEWORKS, pkgs_to_install)
    return build_artifact("onnx", files, declared, **fields)


_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(float16)": np.float16, "tensor(string)": np.object_,
    "tensor(bool)": np.bool_,
}  # fmt: skip


def onnx_providers(available: Sequence[str], visible: str | None) -> list[Any]:
    """ONNX Runtime's providers for a replica: CUDA on its first visible GPU (device 0:
    the local placement's CUDA_VISIBLE_DEVICES lists only its own) when the runtime has
    CUDA and the replica was not given an empty CUDA_VISIBLE_DEVICES, then the CPU."""
    providers: list[Any] = []
    if "CUDAExecutionProvider" in available and visible != "":
        providers.append(("CUDAExecutionProvider", {"device_id": 0}))
    return [*providers, "CPUExecutionProvider"]


def load_onnx(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`onnx`: an ONNX Runtime session (`onnx_providers`: the replica's GPU first); the stacked
    batch goes to the model's first input (cast to its element type); each input gets its
    row of the first output, or of every output in `output_names` as a dict. With a
    `func_file`, `func(session, inputs)` answers instead."""
    import onnxruntime

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    providers = onnx_providers(onnxruntime.get_available_providers(), visible)
    session = onnxruntime.InferenceSession(
        str(artifact_file(path, metadata, "model_file", "model.onnx")), providers=providers
    )
    model_input = session.get_inputs()[0]
    dtype = _ONNX_DTYPES.get(model_input.type, np.float32)
    names = list(metadata.get("output_names") or [session.get_outputs()[0].name])
    func_file = metadata.get("func_file")
    if func_file:
        func = read_pickle(path / str(func_file), metadata)
        return lambda inputs: func(session, inputs)

    def predict(inputs: list[Any]) -> list[Any]:
        batch = np.asarray(stack_inputs(inputs), dtype=dtype)
        results = session.run(names, {model_input.name: batch})
        if len(names) == 1:
            return output_rows(results[0])
        return [{n: r[i] for n, r in zip(names, results, strict=True)} for i in range(len(inputs))]

    return predict
