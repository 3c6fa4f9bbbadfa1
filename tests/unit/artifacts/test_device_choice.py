"""Where the PyTorch and ONNX loaders put a model: the replica's first visible GPU, else CPU."""

from __future__ import annotations

import pytest

from clipper.artifacts.onnx import onnx_providers
from clipper.artifacts.pytorch import choose_device

CUDA = "CUDAExecutionProvider"


@pytest.mark.parametrize(
    ("wanted", "cuda", "device"),
    [
        ("auto", False, "cpu"),
        ("auto", True, "cuda:0"),
        ("cpu", True, "cpu"),
        ("cuda:1", True, "cuda:1"),
    ],
)
def test_torch_device(wanted: str, cuda: bool, device: str) -> None:
    assert choose_device(wanted, cuda) == device


def test_onnx_on_the_replicas_gpu_when_the_runtime_has_cuda() -> None:
    assert onnx_providers([CUDA, "CPUExecutionProvider"], "3") == [
        (CUDA, {"device_id": 0}),
        "CPUExecutionProvider",
    ]


@pytest.mark.parametrize(("available", "visible"), [(["CPUExecutionProvider"], "0"), ([CUDA], "")])
def test_onnx_on_the_cpu(available: list[str], visible: str) -> None:
    assert onnx_providers(available, visible) == ["CPUExecutionProvider"]
