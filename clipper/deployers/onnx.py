"""ONNX Runtime: a model in ONNX's own format, or a PyTorch module exported to it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts import build_artifact
from clipper.deployers.common import framework_environment
from clipper.environments.capture import capture_pickle
from clipper.environments.declare import EnvironmentArg
from clipper.exceptions import InvalidRequest

__all__ = ["export_pytorch", "onnx_artifact", "onnx_bytes"]

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
