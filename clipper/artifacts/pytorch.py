"""PyTorch: an `nn.Module` saved as its structure (cloudpickled on the meta device, so
without weights) and its state dict (`torch.save`), plus Clipper's `func(model, inputs)`."""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from clipper.artifacts._framework import framework_environment
from clipper.artifacts._loading import (
    PredictFunction,
    StreamFunction,
    artifact_file,
    output_rows,
    read_pickle,
    stack_inputs,
)
from clipper.artifacts.format import build_artifact
from clipper.environments.capture import capture_pickle
from clipper.environments.declare import EnvironmentArg

__all__ = ["choose_device", "load_pytorch", "pytorch_artifact"]

FRAMEWORKS = {"torch": "torch", "numpy": "numpy"}


def pytorch_artifact(
    model: Any,
    func: Callable[[Any, list[Any]], Any] | None = None,
    *,
    device: str = "auto",
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A `pytorch` artifact. The worker rebuilds the module on `device` (`auto`: CUDA when
    available, else CPU), loads the weights, puts it in eval mode and calls
    `func(model, inputs)` per batch under `torch.inference_mode()`; without `func`, the
    stacked numeric inputs go through the model and each input gets its output row. A
    generator `func` streams: called with one input, it yields that input's pieces."""
    import torch

    skeleton_bytes, modules = capture_pickle(copy.deepcopy(model).to("meta"))
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    extra = {
        name: tensor.detach().cpu()
        for name, tensor in model.named_buffers()
        if name not in state  # non-persistent buffers: not in the state dict
    }
    weights = io.BytesIO()
    torch.save({"state_dict": state, "extra_buffers": extra}, weights)
    files = {"module.pkl": skeleton_bytes, "weights.pt": weights.getvalue()}
    fields: dict[str, Any] = {"module_file": "module.pkl", "weights_file": "weights.pt",
                              "device": device}  # fmt: skip
    if func is not None:
        files["func.pkl"], func_modules = capture_pickle(func)
        modules |= func_modules
        fields["func_file"] = "func.pkl"
    declared = framework_environment(environment, modules, FRAMEWORKS, pkgs_to_install)
    return build_artifact("pytorch", files, declared, **fields)


def load_pytorch(path: Path, metadata: dict[str, Any]) -> PredictFunction:
    """`pytorch`: the module's structure (cloudpickled, on the meta device: no weights) and
    its weights (`torch.save` of the state dict); `func(model, inputs)` per batch, under
    `torch.inference_mode()`, the model in eval mode on a GPU when one exists."""
    import torch

    _match_interop_threads(torch)
    skeleton = read_pickle(artifact_file(path, metadata, "module_file", "module.pkl"), metadata)
    device = torch.device(choose_device(str(metadata.get("device", "auto")),
                                        torch.cuda.is_available()))  # fmt: skip
    _cap_gpu_memory(torch, device)
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

    if inspect.isgeneratorfunction(func):
        return StreamFunction(partial(_stepped_in_inference, torch, func, model))

    def predict(inputs: list[Any]) -> Any:
        with torch.inference_mode():
            return func(model, inputs)

    return predict


def _stepped_in_inference(
    torch: Any, func: Callable[[Any, list[Any]], Generator[Any]], model: Any, inputs: list[Any]
) -> Iterator[Any]:
    """A streaming `func(model, inputs)`'s pieces, each step under `torch.inference_mode()`
    (a mode entered per step: the worker interleaves the generators of a batch)."""
    pieces = func(model, inputs)
    try:
        while True:
            with torch.inference_mode():
                try:
                    piece = next(pieces)
                except StopIteration:
                    return
            yield piece
    finally:
        pieces.close()


def choose_device(wanted: str, cuda_available: bool) -> str:
    """The device a model asking for `wanted` loads on: `auto` is the replica's first
    visible GPU (`cuda:0`: the local placement's CUDA_VISIBLE_DEVICES lists only its own)
    when CUDA has one, else the CPU; any other name as given."""
    if wanted == "auto":
        return "cuda:0" if cuda_available else "cpu"
    return wanted


def _match_interop_threads(torch: Any) -> None:
    """As many inter-op threads as intra-op ones: the replica's share of the CPUs, which
    the placement gives through OMP_NUM_THREADS (clipper.placement.threads); torch's own
    default is one per core. Torch refuses once its inter-op pool has started."""
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(torch.get_num_threads())


def _cap_gpu_memory(torch: Any, device: Any) -> None:
    """On a fraction of a GPU (the placement's CLIPPER_GPU_FRACTION), cap the caching
    allocator at that share of the device's memory."""
    share = os.environ.get("CLIPPER_GPU_FRACTION")
    if device.type == "cuda" and share:
        torch.cuda.set_per_process_memory_fraction(float(share), device)


def _torch_default(model: Any, inputs: list[Any]) -> list[Any]:
    """Stack the inputs, run the model, one output row per input."""
    import torch

    parameter = next(model.parameters(), None)
    batch = torch.as_tensor(stack_inputs(inputs))
    if parameter is not None:
        batch = batch.to(device=parameter.device, dtype=parameter.dtype)
    return output_rows(model(batch).detach().cpu().numpy())
