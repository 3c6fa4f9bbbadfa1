"""Loaders of framework models saved in their own formats: scikit-learn, PyTorch, ONNX
Runtime, XGBoost and LightGBM. Each framework is imported only when its kind is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clipper.worker.loaders.base import (
    PredictFunction,
    artifact_file,
    output_rows,
    read_pickle,
    stack_inputs,
)

__all__ = ["load_lightgbm", "load_onnx", "load_pytorch", "load_sklearn", "load_xgboost"]


def load_sklearn(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`sklearn`: an estimator or pipeline saved with joblib (or cloudpickle); calls
    `method` on the batch (numeric inputs stacked into one 2-D array, strings as a list)."""
    file = artifact_file(path, metadata, "model_file", "model.joblib")
    if metadata.get("serializer") == "cloudpickle":
        model = read_pickle(file, metadata)
    else:
        import joblib

        model = joblib.load(file)
    method = getattr(model, str(metadata.get("method", "predict")))

    def predict(inputs: list[Any]) -> list[Any]:
        return output_rows(method(stack_inputs(inputs)))

    return predict


def load_pytorch(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`pytorch`: the module's structure (cloudpickled, on the meta device: no weights) and
    its weights (`torch.save` of the state dict); `func(model, inputs)` per batch, under
    `torch.inference_mode()`, the model in eval mode on a GPU when one exists."""
    import torch

    skeleton = read_pickle(artifact_file(path, metadata, "module_file", "module.pkl"), metadata)
    device = _torch_device(torch, str(metadata.get("device", "auto")))
    weights = torch.load(
        artifact_file(path, metadata, "weights_file", "weights.pt"),
        map_location=device,
        weights_only=True,
    )
    model = skeleton.to_empty(device=device)
    model.load_state_dict(weights["state_dict"])
    for name, tensor in weights.get("extra_buffers", {}).items():
        owner, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(owner), attribute, tensor)
    model.eval()
    func_file = metadata.get("func_file")
    func = read_pickle(path / str(func_file), metadata) if func_file else _torch_default

    def predict(inputs: list[Any]) -> Any:
        with torch.inference_mode():
            return func(model, inputs)

    return predict


def _torch_device(torch: Any, wanted: str) -> Any:
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(wanted)


def _torch_default(model: Any, inputs: list[Any]) -> list[Any]:
    """Stack the inputs, run the model, one output row per input."""
    import torch

    parameter = next(model.parameters(), None)
    batch = torch.as_tensor(stack_inputs(inputs))
    if parameter is not None:
        batch = batch.to(device=parameter.device, dtype=parameter.dtype)
    return output_rows(model(batch).detach().cpu().numpy())


_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(float16)": np.float16, "tensor(string)": np.object_,
    "tensor(bool)": np.bool_,
}  # fmt: skip


def load_onnx(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`onnx`: an ONNX Runtime session (CUDA provider first when available); the stacked
    batch goes to the model's first input (cast to its element type); each input gets its
    row of the first output, or of every output in `output_names` as a dict. With a
    `func_file`, `func(session, inputs)` answers instead."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
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


def load_xgboost(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`xgboost`: a native model file; a Booster predicts in place, a scikit-learn wrapper
    (`XGBClassifier`, ...) is rebuilt and its `method` called."""
    import xgboost

    file = artifact_file(path, metadata, "model_file", "model.ubj")
    estimator = str(metadata.get("estimator", "Booster"))
    if estimator == "Booster":
        booster = xgboost.Booster(model_file=str(file))

        def predict(inputs: list[Any]) -> list[Any]:
            return output_rows(booster.inplace_predict(stack_inputs(inputs)))

        return predict
    model = getattr(xgboost, estimator)()
    model.load_model(str(file))
    method = getattr(model, str(metadata.get("method", "predict")))
    return lambda inputs: output_rows(method(stack_inputs(inputs)))


def load_lightgbm(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`lightgbm`: a Booster from its native text model file."""
    import lightgbm

    booster = lightgbm.Booster(
        model_file=str(artifact_file(path, metadata, "model_file", "model.txt"))
    )

    def predict(inputs: list[Any]) -> list[Any]:
        return output_rows(booster.predict(stack_inputs(inputs)))

    return predict
