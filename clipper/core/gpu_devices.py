"""The GPUs of one machine, as values: what the local placement shares out and the metrics
show. Pure, no NVML import (discovery is `clipper.placement.gpu_discovery`).

The `gpus` setting (`CLIPPER_GPUS`) describes fake devices, so that placement can be tested
on a machine without a GPU: a count (`2`), or a JSON list of objects with an optional
`name` and `memory` in bytes (`[{"name": "fake-a100", "memory": 40000000000}, {}]`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["GpuDevice", "GpuSample", "parse_gpu_setting"]

FAKE_NAME = "fake-gpu"


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU: `index` is what CUDA_VISIBLE_DEVICES names (NVML's order, PCI bus order)."""

    index: int
    name: str = FAKE_NAME
    memory_bytes: int = 0
    uuid: str = ""


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one scrape: its share handed out to replicas (0..1), the replicas that
    hold it with their shares, and where NVML answers, its utilisation (0..1) and memory
    in use."""

    device: GpuDevice
    allocated: float
    holders: tuple[tuple[str, float], ...] = ()
    utilization: float | None = None
    memory_used_bytes: int | None = None


def parse_gpu_setting(text: str) -> tuple[GpuDevice, ...]:
    """Fake devices from a count or a JSON list; ValueError says what is accepted."""
    cleaned = text.strip()
    if cleaned.isdigit():
        return tuple(GpuDevice(index) for index in range(int(cleaned)))
    try:
        items = json.loads(cleaned)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(
            'gpus is a count of fake devices (2) or a JSON list of {"name", "memory"} '
            f"objects, got {text!r:.80}"
        )
    return tuple(_device(index, item) for index, item in enumerate(items))


def _device(index: int, item: dict[str, object]) -> GpuDevice:
    name = item.get("name", FAKE_NAME)
    memory = item.get("memory", 0)
    if not isinstance(name, str) or isinstance(memory, bool) or not isinstance(memory, int):
        raise ValueError(f"fake GPU {index}: 'name' must be text and 'memory' whole bytes")
    if memory < 0:
        raise ValueError(f"fake GPU {index}: 'memory' must not be negative")
    return GpuDevice(index, name, memory, f"fake-{index}")
