"""PyTorch: an `nn.Module` saved as its structure (cloudpickled on the meta device, so
without weights) and its state dict (`torch.save`), plus Clipper's `func(model, inputs)`."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Sequence
from typing import Any

from clipper.artifacts import build_artifact
from clipper.deployers.common import framework_environment
from clipper.environments.capture import capture_pickle
from clipper.environments.declare import EnvironmentArg

__all__ = ["pytorch_artifact"]

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
    stacked numeric inputs go through the model and each input gets its output row."""
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
