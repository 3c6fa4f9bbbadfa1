"""Which GPUs this machine has: the `gpus` setting's fake devices, else NVML's, else none.

NVML comes from the optional `nvidia-ml-py` package (`pip install 'clipper-serving[gpu]'`),
imported only here and only when no fake devices are set; a machine without it, or without
a driver that answers, has no GPU. When the server's own CUDA_VISIBLE_DEVICES lists devices
(indices or UUIDs), only those are shared out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from clipper.core.gpu_devices import GpuDevice, GpuSample, parse_gpu_setting

__all__ = ["GpuProbe", "discover_gpus"]

log = logging.getLogger("clipper.placement.gpus")


class GpuProbe:
    """The machine's devices, and (NVML only) their utilisation and memory in use."""

    def __init__(self, devices: Sequence[GpuDevice], nvml: Any = None) -> None:
        self.devices = tuple(devices)
        self._nvml = nvml

    def measure(self, samples: list[GpuSample]) -> list[GpuSample]:
        """`samples` with NVML's utilisation and memory in use filled in (as they are for
        fake devices, or when NVML fails)."""
        if self._nvml is None:
            return samples
        return [self._measured(sample) for sample in samples]

    def _measured(self, sample: GpuSample) -> GpuSample:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(sample.device.index)
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except Exception:  # NVMLError, a device lost: the sample without measurements
            return sample
        return GpuSample(sample.device, sample.allocated, sample.holders,
                         rates.gpu / 100, int(memory.used))  # fmt: skip


def discover_gpus(setting: str | None, visible: str | None = None) -> GpuProbe:
    """The fake devices `setting` describes, else NVML's devices (restricted to `visible`,
    the server's CUDA_VISIBLE_DEVICES, default: its environment's), else none."""
    if setting is not None:
        return GpuProbe(parse_gpu_setting(setting))
    nvml = _nvml()
    if nvml is None:
        return GpuProbe(())
    devices = _nvml_devices(nvml)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if visible is not None and visible.strip():
        wanted = {item.strip() for item in visible.split(",")}
        devices = [d for d in devices if str(d.index) in wanted or d.uuid in wanted]
    log.info("GPUs: %s", ", ".join(f"{d.index} {d.name}" for d in devices) or "none")
    return GpuProbe(devices, nvml)


def _nvml() -> Any:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError: no driver, no device
        log.info("no GPU: NVML did not start (%s)", exc)
        return None
    return pynvml


def _nvml_devices(nvml: Any) -> list[GpuDevice]:
    devices = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        devices.append(GpuDevice(
            index, _text(nvml.nvmlDeviceGetName(handle)),
            int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
            _text(nvml.nvmlDeviceGetUUID(handle)),
        ))  # fmt: skip
    return devices


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
