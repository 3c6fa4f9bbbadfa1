"""Deploy a PyTorch module, as Clipper's `deploy_pytorch_model`: `func(model, inputs)`
answers each batch (CPU here, the GPU where one exists)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clipper.artifacts.pytorch import pytorch_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["create_endpoint", "deploy_pytorch_model"]


def deploy_pytorch_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    func: Callable[[Any, list[Any]], Any] | None,
    pytorch_model: Any,
    base_image: str = "default",
    labels: Sequence[str] | None = None,
    registry: str | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    device: str = "auto",
) -> None:
    """Deploy `pytorch_model` (its structure and its state dict); each worker loads it on
    `device` in eval mode and calls `func(model, inputs)` per batch under
    `torch.inference_mode()`. With `func=None` the stacked numeric inputs go through the
    model and each input gets its output row."""
    artifact = pytorch_artifact(
        pytorch_model, func, device=device, environment=environment,
        pkgs_to_install=pkgs_to_install or (),
    )  # fmt: skip
    deploy_built(clipper_conn, name, version, input_type, artifact, "pytorch", labels,
                 num_replicas, batch_size)  # fmt: skip


def create_endpoint(
    clipper_conn: ClipperConnection,
    name: str,
    input_type: str,
    func: Callable[[Any, list[Any]], Any] | None,
    pytorch_model: Any,
    default_output: str = "None",
    version: Version = 1,
    slo_micros: int = 3000000,
    num_replicas: int | None = None,
    batch_size: int = -1,
) -> None:
    """Register app `name`, deploy the module as model `name`, and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_pytorch_model(clipper_conn, name, version, input_type, func, pytorch_model,
                         num_replicas=num_replicas, batch_size=batch_size)  # fmt: skip
    clipper_conn.link_model_to_app(name, name)
