"""Sharing one machine's GPUs out to replicas: pure bookkeeping, no I/O and no NVML.

A request of `num_gpus` >= 1 (a whole number) takes that many whole, unshared devices; a
fraction in (0, 1) is packed best-fit onto one device (the device with the least room that
still fits it, lowest index on ties), so small requests fill a device before starting the
next. Invariant: the shares granted on a device never add up to more than one whole GPU
(kept in integer units, so 4 x 0.25 fits exactly and 0.1 + 0.2 does not drift).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from clipper.core.gpu_devices import GpuDevice, GpuSample

__all__ = ["FRACTION_ENV", "VISIBLE_DEVICES_ENV", "GpuAllocator", "GpuGrant"]

VISIBLE_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"
FRACTION_ENV = "CLIPPER_GPU_FRACTION"
"""The share of its one device a fractional replica was granted (a hint to the model: CUDA
does not enforce it; the PyTorch loader caps its caching allocator's memory with it)."""
UNITS = 10_000  # one whole GPU


@dataclass(frozen=True, slots=True)
class GpuGrant:
    """Devices granted to one holder; `share` of each (1.0: whole). `lease` tells apart two
    grants of the same holder (a restarted replica), so releasing an old one is harmless."""

    holder: str
    devices: tuple[int, ...]
    share: float
    lease: int

    def environment(self) -> dict[str, str]:
        """The worker's environment for its devices (CUDA's index is NVML's, in PCI order)."""
        env = {VISIBLE_DEVICES_ENV: ",".join(map(str, self.devices)),
               "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}  # fmt: skip
        if self.share < 1:
            env[FRACTION_ENV] = f"{self.share:g}"
        return env


class GpuAllocator:
    """Which replica holds which share of which GPU."""

    def __init__(self, devices: Sequence[GpuDevice]) -> None:
        self.devices = tuple(devices)
        self._used = {device.index: 0 for device in self.devices}
        self._grants: dict[int, tuple[GpuGrant, int]] = {}  # lease -> grant, units per device
        self._leases = itertools.count(1)

    def allocate(self, holder: str, num_gpus: float) -> GpuGrant | None:
        """Grant `num_gpus` to `holder`, or None when they do not fit now (`why_not` says
        why). ValueError for a request that is no GPU request (<= 0, or 1.5)."""
        units = _units(num_gpus)
        if units >= UNITS:
            chosen = [index for index, used in self._used.items() if used == 0]
            chosen = chosen[: units // UNITS]
            if len(chosen) < units // UNITS:
                return None
            per_device = UNITS
        else:
            fits = [(UNITS - used, index) for index, used in self._used.items()
                    if UNITS - used >= units]  # fmt: skip
            if not fits:
                return None
            chosen, per_device = [min(fits)[1]], units
        for index in chosen:
            self._used[index] += per_device
        grant = GpuGrant(holder, tuple(chosen), per_device / UNITS, next(self._leases))
        self._grants[grant.lease] = (grant, per_device)
        return grant

    def release(self, grant: GpuGrant) -> None:
        """Give a grant's shares back; releasing it twice, or one never made, does nothing."""
        held = self._grants.pop(grant.lease, None)
        if held is None:
            return
        for index in held[0].devices:
            self._used[index] -= held[1]

    def why_not(self, num_gpus: float) -> str:
        """Why `num_gpus` cannot be granted now: none on the machine, more than it has, or
        what each device has free."""
        wanted = f"{num_gpus:g} GPU{'' if num_gpus == 1 else 's'}"
        if not self.devices:
            return (
                f"it asks for {wanted}, but this machine has no GPU the server can see "
                "(NVML found none: install clipper-serving[gpu], or set CLIPPER_GPUS)"
            )
        if num_gpus > len(self.devices):
            return f"it asks for {wanted}, but this machine has {len(self.devices)}"
        whole = " (whole, unshared devices)" if num_gpus >= 1 else " on one device"
        free = ", ".join(f"GPU {i} {(UNITS - used) / UNITS:g}" for i, used in self._used.items())
        return f"waiting for free GPUs: it asks for {wanted}{whole}; free: {free}"

    def samples(self) -> list[GpuSample]:
        """Each device's share handed out and its holders, by index."""
        holders: dict[int, list[tuple[str, float]]] = {d.index: [] for d in self.devices}
        for grant, _ in self._grants.values():
            for index in grant.devices:
                holders[index].append((grant.holder, grant.share))
        return [
            GpuSample(device, self._used[d] / UNITS, tuple(sorted(holders[d])))
            for device in self.devices
            for d in (device.index,)
        ]

    def grants(self) -> list[GpuGrant]:
        """Every grant held now."""
        return [grant for grant, _ in self._grants.values()]


def _units(num_gpus: float) -> int:
    if num_gpus <= 0 or (num_gpus > 1 and not float(num_gpus).is_integer()):
        raise ValueError(f"num_gpus must be a fraction in (0, 1] or a whole number, got {num_gpus}")
    return max(1, round(num_gpus * UNITS))
