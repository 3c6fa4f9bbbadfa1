"""What a model version's replicas ask of the machines they run on.

Pure values and functions, no Ray import: the admin API validates a request at deploy time,
the registry stores it as JSON, the Ray placement turns it into actor options and, while a
replica waits to be placed, explains why (`clipper.placement.scheduling`).

A request mirrors Ray's actor options:

    {"num_cpus": 1, "num_gpus": 0.5, "memory": 2_000_000_000,
     "resources": {"accelerator_type:A10G": 1}, "label_selector": {"zone": "us-west-2a"},
     "node_id": "<hex>", "node_affinity_soft": false}

`memory` is in bytes, a reservation Ray schedules by. Three keys are limits every placement
enforces on each replica's worker (`ReplicaLimits`, applied by `clipper.worker.rlimits`):
`memory_limit` (bytes; the worker is killed and reported "memory limit exceeded" past it;
not given: the cluster's `replica_memory_limit`, half of the machine unless set; 0: none),
`cpu_share` (0 < share <= 1, the CPU weight relative to a default process) and
`max_open_files`. Ray gives each node a
custom resource `node:<ip>`, so `{"resources": {"node:10.0.0.5": 0.01}}` pins replicas to
one machine. An empty request is the placement's default (one CPU per replica on Ray; the
local placement enforces only the limits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper.core.exceptions import InvalidRequest

__all__ = [
    "DEFAULT_NUM_CPUS",
    "RESOURCE_KEYS",
    "DefaultMemoryLimit",
    "ReplicaLimits",
    "ResourceRequest",
]

DEFAULT_NUM_CPUS = 1.0
"""CPUs a replica reserves on Ray when its request does not say (its worker is busy)."""

RESOURCE_KEYS = (
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "label_selector",
    "node_id",
    "node_affinity_soft",
    "memory_limit",
    "cpu_share",
    "max_open_files",
)
MIN_MEMORY_LIMIT_BYTES = 32 * 1024 * 1024  # below this no Python worker even starts
MIN_OPEN_FILES = 16  # the worker's own interpreter, log and socket
_BUILT_IN = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory"}


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}  # fmt: skip
_AMOUNT = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]i?)?b?", re.IGNORECASE)
_OFF = ("off", "none", "0")


@dataclass(frozen=True, slots=True)
class DefaultMemoryLimit:
    """The memory limit of a replica whose version sets none: a share of the memory of the
    machine it runs on (the worker works it out there), a number of bytes, or none."""

    fraction: float | None = None
    limit_bytes: int | None = None

    @classmethod
    def parse(cls, text: str) -> DefaultMemoryLimit:
        """`50%`, `4GiB`, `512MB`, `2000000000`, or `off` (also `none`, `0`); ValueError
        says what is accepted."""
        cleaned = text.strip().lower()
        if cleaned in _OFF:
            return cls()
        if cleaned.endswith("%"):
            try:
                percent = float(cleaned[:-1])
            except ValueError:
                percent = math.nan
            if not 0 < percent <= 100:
                raise ValueError(f"a memory share must be in (0%, 100%], got {text!r}")
            return cls(fraction=percent / 100)
        match = _AMOUNT.fullmatch(cleaned)
        if match is None:
            raise ValueError(
                f"a memory limit is a share of the machine (50%), an amount (4GiB, 512MB, "
                f"bytes) or off; got {text!r}"
            )
        amount = int(float(match["number"]) * _UNITS[(match["unit"] or "").lower()])
        if amount < MIN_MEMORY_LIMIT_BYTES:
            raise ValueError(f"a memory limit must be at least {MIN_MEMORY_LIMIT_BYTES} bytes")
        return cls(limit_bytes=amount)

    def __str__(self) -> str:
        if self.fraction is not None:
            return f"{self.fraction * 100:g}%"
        return "off" if self.limit_bytes is None else str(self.limit_bytes)

    def resolve(self, machine_bytes: int) -> int | None:
        """The limit in bytes on a machine with `machine_bytes` of memory (0: unknown, so no
        share of it), never below what a worker needs to start."""
        if self.fraction is None:
            return self.limit_bytes
        if machine_bytes <= 0:
            return None
        return max(MIN_MEMORY_LIMIT_BYTES, int(machine_bytes * self.fraction))


@dataclass(frozen=True, slots=True)
class ReplicaLimits:
    """What one replica's worker may use; None: unlimited, except `memory_limit_bytes`:
    None takes the cluster's default, 0 is no limit."""

    memory_limit_bytes: int | None = None
    cpu_share: float | None = None
    max_open_files: int | None = None

    def worker_args(self, default_memory: DefaultMemoryLimit | None = None) -> list[str]:
        """The worker's command-line flags for these limits, with `default_memory` where
        they set no memory limit."""
        args: list[str] = []
        if self.memory_limit_bytes is None:
            if default_memory is not None and str(default_memory) != "off":
                args += ["--default-memory-limit", str(default_memory)]
        elif self.memory_limit_bytes > 0:
            args += ["--memory-limit-bytes", str(self.memory_limit_bytes)]
        if self.cpu_share is not None:
            args += ["--cpu-share", repr(self.cpu_share)]
        if self.max_open_files is not None:
            args += ["--max-open-files", str(self.max_open_files)]
        return args


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """Resources and placement constraints of each replica of one model version."""

    num_cpus: float | None = None
    num_gpus: float | None = None
    memory_bytes: int | None = None
    custom: tuple[tuple[str, float], ...] = ()
    label_selector: tuple[tuple[str, str], ...] = ()
    node_id: str | None = None
    node_affinity_soft: bool = False
    limits: ReplicaLimits = field(default_factory=ReplicaLimits)

    @classmethod
    def parse(cls, value: object) -> ResourceRequest:
        """Validate a request given as a JSON object (None or `{}`: the default).

        InvalidRequest names the offending key.
        """
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise InvalidRequest(f"'resources' must be a JSON object, got {value!r:.60}")
        unknown = sorted(str(key) for key in value if key not in RESOURCE_KEYS)
        if unknown:
            raise InvalidRequest(
                f"unknown resource key(s) {', '.join(unknown)}; known: {', '.join(RESOURCE_KEYS)}"
            )
        return cls(
            num_cpus=_optional_amount(value, "num_cpus"),
            num_gpus=_gpus(value),
            memory_bytes=_memory(value),
            custom=_custom(value.get("resources")),
            label_selector=_labels(value.get("label_selector")),
            node_id=_node_id(value.get("node_id")),
            node_affinity_soft=_flag(value, "node_affinity_soft"),
            limits=_limits(value),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `parse` reads back; keys left at their default are omitted."""
        fields: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "memory": self.memory_bytes,
            "resources": dict(self.custom) or None,
            "label_selector": dict(self.label_selector) or None,
            "node_id": self.node_id,
            "node_affinity_soft": self.node_affinity_soft or None,
            "memory_limit": self.limits.memory_limit_bytes,
            "cpu_share": self.limits.cpu_share,
            "max_open_files": self.limits.max_open_files,
        }
        return {key: value for key, value in fields.items() if value is not None}

    @property
    def cpus(self) -> float:
        """The CPUs one replica takes on its machine: its `num_cpus`, else its `cpu_share`,
        else DEFAULT_NUM_CPUS (a worker busy with its model keeps one CPU busy)."""
        if self.num_cpus is not None:
            return self.num_cpus
        if self.limits.cpu_share is not None:
            return self.limits.cpu_share
        return DEFAULT_NUM_CPUS

    def amounts(self, default_num_cpus: float = DEFAULT_NUM_CPUS) -> dict[str, float]:
        """Ray resource names and the amounts one replica reserves (zeros left out)."""
        cpus = default_num_cpus if self.num_cpus is None else self.num_cpus
        wanted = {"CPU": cpus, "GPU": self.num_gpus or 0.0, "memory": self.memory_bytes or 0}
        wanted.update(self.custom)
        return {name: float(amount) for name, amount in wanted.items() if amount > 0}

    def actor_options(self, default_num_cpus: float = DEFAULT_NUM_CPUS) -> dict[str, Any]:
        """Ray `.options(...)` for the replica's actor, less the node-affinity strategy."""
        options: dict[str, Any] = {
            "num_cpus": default_num_cpus if self.num_cpus is None else self.num_cpus,
            "num_gpus": self.num_gpus or 0,
        }
        if self.memory_bytes:
            options["memory"] = self.memory_bytes
        if self.custom:
            options["resources"] = dict(self.custom)
        if self.label_selector:
            options["label_selector"] = dict(self.label_selector)
        return options


# -- parsing --------------------------------------------------------------------------------


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequest(f"resource {key!r} must be a number, got {value!r:.60}")
    if value < 0:
        raise InvalidRequest(f"resource {key!r} must not be negative, got {value!r}")
    return float(value)


def _optional_amount(body: Mapping[str, object], key: str) -> float | None:
    value = body.get(key)
    return None if value is None else _number(value, key)


def _gpus(body: Mapping[str, object]) -> float | None:
    gpus = _optional_amount(body, "num_gpus")
    if gpus is not None and gpus > 1 and not gpus.is_integer():
        raise InvalidRequest(f"'num_gpus' above 1 must be a whole number, got {gpus:g}")
    return gpus


def _memory(body: Mapping[str, object]) -> int | None:
    memory = _optional_amount(body, "memory")
    return None if memory is None else int(memory)


def _limits(body: Mapping[str, object]) -> ReplicaLimits:
    memory = _optional_amount(body, "memory_limit")
    if memory is not None and 0 < memory < MIN_MEMORY_LIMIT_BYTES:
        raise InvalidRequest(
            f"'memory_limit' must be at least {MIN_MEMORY_LIMIT_BYTES} bytes (0: no limit)"
        )
    share = _optional_amount(body, "cpu_share")
    if share is not None and not 0 < share <= 1:
        raise InvalidRequest(f"'cpu_share' must be in (0, 1], got {share:g}")
    files = _optional_amount(body, "max_open_files")
    if files is not None and (not files.is_integer() or files < MIN_OPEN_FILES):
        raise InvalidRequest(f"'max_open_files' must be a whole number >= {MIN_OPEN_FILES}")
    return ReplicaLimits(
        None if memory is None else int(memory), share, None if files is None else int(files)
    )


def _custom(value: object) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidRequest("'resources' must map custom resource names to amounts")
    amounts = []
    for name, amount in sorted(value.items()):
        if not isinstance(name, str) or not name:
            raise InvalidRequest("custom resource names must be non-empty strings")
        if name in _BUILT_IN:
            raise InvalidRequest(f"ask for {name!r} with {_BUILT_IN[name]!r}, not in 'resources'")
        amounts.append((name, _number(amount, name)))
    return tuple(amounts)


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise InvalidRequest("'label_selector' must map label names to strings")
    return tuple(sorted(value.items()))


def _node_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c not in "0123456789abcdef" for c in value):
        raise InvalidRequest(f"'node_id' must be a Ray node id (hex), got {value!r:.60}")
    return value


def _flag(body: Mapping[str, object], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key!r} must be true or false, got {value!r:.60}")
    return value
