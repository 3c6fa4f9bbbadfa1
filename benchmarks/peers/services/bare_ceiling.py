"""The bare model's in-process batched throughput: the ceiling no server reaches.
Run as `python bare_ceiling.py WORKLOAD SECONDS [DEVICE] [BATCH_SIZES]` next to peer_model.py;
prints one JSON object: items per second at each batch size and the best of them.

Each batch holds the workload's input repeated and is prepared before the clock starts, so
only the model is timed (for the CNN: the copy to the device, the forward pass and the
labels back, once per batch); every answer is checked against the single-input answer."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import peer_model

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
_WARMUP_CALLS = 3


def predictor(workload: str, device: str) -> tuple[Callable[[Any], list[int]], Any]:
    """The batch predict function of `workload` and its single input."""
    if workload == "cnn":
        network = peer_model.build_cnn(device)
        return (lambda batch: peer_model.predict_images(network, batch)), peer_model.CNN_INPUT
    if workload == "text":
        model = peer_model.train_text_model()
        return (lambda batch: peer_model.predict_texts(model, batch)), peer_model.TEXT_INPUT
    raise ValueError(f"no in-process ceiling for workload {workload!r}")


def _prepared(workload: str, item: Any, size: int) -> Any:
    if workload == "cnn":
        import numpy as np

        return np.tile(np.asarray(item, dtype=np.float32), (size, 1))
    return [item] * size


def items_per_s(predict: Callable[[Any], list[int]], batch: Any, expected: int,
                seconds: float) -> float:  # fmt: skip
    """Items answered per second by `predict` on `batch`, called for about `seconds`."""
    for _ in range(_WARMUP_CALLS):
        predict(batch)
    calls, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        labels = predict(batch)
        calls += 1
        if any(label != expected for label in labels):
            raise RuntimeError(f"batch of {len(labels)} answered {set(labels)}, not {expected}")
        now = time.perf_counter()
        if now >= deadline:
            return calls * len(labels) / (now - started)


def measure(workload: str, seconds: float, device: str = "cpu",
            sizes: tuple[int, ...] = BATCH_SIZES) -> dict[str, Any]:  # fmt: skip
    """Items per second at each batch size (about `seconds` in all) and the best size."""
    predict, item = predictor(workload, device)
    expected = predict(_prepared(workload, item, 1))[0]
    rates = {
        size: items_per_s(predict, _prepared(workload, item, size), expected, seconds / len(sizes))
        for size in sizes
    }
    best = max(rates, key=lambda size: rates[size])
    return {"batch_size": best, "items_per_s": rates[best], "label": expected,
            "per_batch_size": [[size, rate] for size, rate in rates.items()]}  # fmt: skip


if __name__ == "__main__":
    sizes = tuple(int(s) for s in sys.argv[4].split(",")) if len(sys.argv) > 4 else BATCH_SIZES
    device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
    print(json.dumps(measure(sys.argv[1], float(sys.argv[2]), device, sizes)))
