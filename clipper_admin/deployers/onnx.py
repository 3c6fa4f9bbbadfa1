"""Deploy an ONNX model on ONNX Runtime, or a PyTorch module exported to ONNX (Clipper's
`onnx.deploy_pytorch_model`, with ONNX Runtime in place of Caffe2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clipper.artifacts._framework import require_numeric
from clipper.artifacts.onnx import export_pytorch, onnx_artifact
from clipper.environments.declare import EnvironmentArg
from clipper_admin.clipper_admin import ClipperConnection, Version
from clipper_admin.deployers._common import deploy_built

__all__ = ["deploy_onnx_model", "deploy_pytorch_model"]


def deploy_onnx_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    onnx_model: Any,
    func: Callable[[Any, list[Any]], Any] | None = None,
    labels: Sequence[str] | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
    output_names: Sequence[str] | None = None,
) -> None:
    """Deploy an ONNX model (bytes, a `.onnx` path or an `onnx.ModelProto`). Each batch is
    stacked into the model's first input; each input gets its row of the first output (or
    a dict of its rows of `output_names`). With `func`, `func(session, inputs)` answers."""
    if func is None:
        require_numeric(input_type, "an ONNX model without func")
    artifact = onnx_artifact(
        onnx_model, func, output_names=output_names, environment=environment,
        pkgs_to_install=pkgs_to_install or (),
    )  # fmt: skip
    deploy_built(clipper_conn, name, version, input_type, artifact, "onnx", labels,
                 num_replicas, batch_size)  # fmt: skip


def deploy_pytorch_model(
    clipper_conn: ClipperConnection,
    name: str,
    version: Version,
    input_type: str,
    inputs: Any,
    func: Callable[[Any, list[Any]], Any] | None,
    pytorch_model: Any,
    base_image: str = "default",
    labels: Sequence[str] | None = None,
    registry: str | None = None,
    num_replicas: int | None = None,
    batch_size: int = -1,
    pkgs_to_install: Sequence[str] | None = None,
    environment: EnvironmentArg = "capture",
) -> None:
    """Export `pytorch_model` to ONNX with example `inputs` (the batch dimension dynamic)
    and deploy it on ONNX Runtime; `func(session, inputs)` answers each batch if given."""
    deploy_onnx_model(
        clipper_conn, name, version, input_type, export_pytorch(pytorch_model, inputs), func,
        labels, num_replicas, batch_size, pkgs_to_install, environment,
    )  # fmt: skip
