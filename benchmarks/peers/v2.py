"""The Open Inference Protocol (V2) request the V2 peers (MLServer, Triton) are sent: the
workload's one input as a one-row JSON tensor, `POST /v2/models/bench/infer`."""

from __future__ import annotations

from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.system import Request

__all__ = ["TENSORS", "v2_label", "v2_request"]

TENSORS: dict[str, tuple[str, str, Any]] = {
    "noop": ("input", "FP64", model.NOOP_INPUT),
    "sklearn": ("input", "FP64", model.SKLEARN_ROW),
    "sklearn-batch": ("input", "FP64", model.SKLEARN_ROW),
    "cnn": ("image", "FP32", model.CNN_INPUT),
    "text": ("text", "BYTES", [model.TEXT_INPUT]),
}
"""Per workload: the input tensor's name, datatype and one row of data."""


def v2_request(workload: str, port: int) -> Request:
    """The workload's input as a tensor of shape [1, row length] for model `bench`."""
    name, datatype, data = TENSORS[workload]
    tensor = {"name": name, "shape": [1, len(data)], "datatype": datatype, "data": data}
    return Request(port, "/v2/models/bench/infer", orjson.dumps({"inputs": [tensor]}))


def v2_label(workload: str, body: bytes) -> Any:
    """The answer in a V2 response: the no-op's row, every other model's one label."""
    data = orjson.loads(body)["outputs"][0]["data"]
    return data if workload == "noop" else data[0]
