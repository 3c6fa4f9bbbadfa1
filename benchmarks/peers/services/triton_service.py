"""Triton through PyTriton: `python triton_service.py PORT WORKLOAD DEVICE` next to
peer_model.py. Binds model `bench` (V2 REST at 127.0.0.1:PORT; gRPC and metrics on free
ports), with Triton's dynamic batching (max_batch_size 64, 2 ms queue delay) on every
workload but `sklearn` (batching off: max_batch_size 1); stops on SIGTERM."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import peer_model
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

MAX_BATCH_SIZE, MAX_QUEUE_DELAY_US = 64, 2000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _labels(values: list[int]) -> dict[str, np.ndarray]:
    return {"label": np.asarray(values, dtype=np.int64).reshape(-1, 1)}


def model_of(workload: str, device: str) -> tuple[Callable[..., Any], list[Tensor], list[Tensor]]:
    """The batched infer function of `workload`, its inputs and its outputs."""
    label = [Tensor(name="label", dtype=np.int64, shape=(1,))]
    if workload == "noop":
        size = len(peer_model.NOOP_INPUT)
        spec = [Tensor(name="input", dtype=np.float64, shape=(size,))]
        return (lambda input: {"output": input}), spec, [
            Tensor(name="output", dtype=np.float64, shape=(size,))]  # fmt: skip
    if workload == "cnn":
        network = peer_model.build_cnn(device)
        spec = [Tensor(name="image", dtype=np.float32, shape=(peer_model.CNN_SIZE,))]
        return (lambda image: _labels(peer_model.predict_images(network, image))), spec, label
    if workload == "text":
        model = peer_model.train_text_model()
        spec = [Tensor(name="text", dtype=bytes, shape=(1,))]

        def texts(text: np.ndarray) -> dict[str, np.ndarray]:
            strings = [item.decode() for item in text.reshape(-1)]
            return _labels(peer_model.predict_texts(model, strings))

        return texts, spec, label
    trained = peer_model.train_sklearn_model()
    spec = [Tensor(name="input", dtype=np.float64, shape=(peer_model.SKLEARN_FEATURES,))]
    return (lambda input: _labels(peer_model.predict_rows(trained, input))), spec, label


def main(port: int, workload: str, device: str) -> None:
    infer, inputs, outputs = model_of(workload, device)
    size = 1 if workload == "sklearn" else MAX_BATCH_SIZE
    config = ModelConfig(
        max_batch_size=size, batcher=DynamicBatcher(max_queue_delay_microseconds=MAX_QUEUE_DELAY_US)
    )
    triton_config = TritonConfig(http_address="127.0.0.1", http_port=port,
                                 grpc_address="127.0.0.1", grpc_port=_free_port(),
                                 metrics_port=_free_port(), allow_metrics=False)  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Triton(config=triton_config) as triton:
        triton.bind(model_name="bench", infer_func=batch(infer), inputs=inputs,
                    outputs=outputs, config=config, strict=False)  # fmt: skip
        triton.serve()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "cpu")
