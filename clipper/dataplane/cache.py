"""The prediction cache: bounded in bytes, LRU, keyed by model version and full input."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from clipper.core.types import ModelId

__all__ = ["PredictionCache", "estimate_size_bytes"]

_ENTRY_OVERHEAD_BYTES = 96
_MISSING = object()


def estimate_size_bytes(value: Any) -> int:
    """A cheap estimate of an output's memory, good enough to bound the cache."""
    if isinstance(value, (str, bytes)):
        return 49 + len(value)
    if isinstance(value, np.ndarray):
        return 112 + value.nbytes
    if isinstance(value, (list, tuple)):
        sample = value[:16]
        per_item = sum(estimate_size_bytes(item) for item in sample) / max(1, len(sample))
        return 56 + int(len(value) * (8 + per_item))
    if isinstance(value, dict):
        return 64 + sum(estimate_size_bytes(k) + estimate_size_bytes(v) for k, v in value.items())
    return 32


class PredictionCache:
    """LRU cache of outputs. Keys compare the full input bytes for equality (a dict key
    compares equal, not just its hash), so two inputs never share an entry by collision.

    Invariant: `size_bytes <= capacity_bytes` after every `put`.
    """

    MISSING: Any = _MISSING

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.size_bytes = 0
        self._entries: OrderedDict[tuple[ModelId, bytes], tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model_id: ModelId, input_bytes: bytes) -> Any:
        """The cached output, or `PredictionCache.MISSING`."""
        key = (model_id, input_bytes)
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, model_id: ModelId, input_bytes: bytes, output: Any) -> None:
        """Store an output, evicting least recently used entries to stay in bounds."""
        key = (model_id, input_bytes)
        size = _ENTRY_OVERHEAD_BYTES + len(input_bytes) + estimate_size_bytes(output)
        if size > self.capacity_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size_bytes -= old[1]
        self._entries[key] = (output, size)
        self.size_bytes += size
        while self.size_bytes > self.capacity_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size_bytes -= evicted

    def drop_model(self, model_id: ModelId) -> None:
        """Forget every entry of a model version."""
        for key in [key for key in self._entries if key[0] == model_id]:
            self.size_bytes -= self._entries.pop(key)[1]
