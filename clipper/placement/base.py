"""The placement interface: who starts worker processes, and where."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from clipper.core.resources import DefaultMemoryLimit, ResourceRequest
from clipper.core.types import InputType, ReplicaId

__all__ = [
    "DescribedReplica",
    "Placement",
    "ReplicaLaunch",
    "ReplicaPlacement",
    "RunningReplica",
    "placement_details",
]


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    """Everything needed to start one replica's worker."""

    replica_id: ReplicaId
    input_type: InputType
    artifact: Path
    rpc_address: str
    log_path: Path
    heartbeat_interval_s: float
    spin_us: int = 0
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    log_max_bytes: int = 10 * 1024 * 1024
    """The replica's log file's cap: the worker rotates it (clipper.worker.output_log)."""
    log_backups: int = 3
    credential: str = ""
    """The one-time credential its worker registers with (clipper.rpc.credentials), handed
    over a pipe; empty: the cluster's secret, in its environment (in-process uses only)."""
    default_memory_limit: DefaultMemoryLimit = field(default_factory=DefaultMemoryLimit)
    """The memory limit where `resources` sets none (the cluster's `replica_memory_limit`)."""
    frontends: tuple[str, ...] = ()
    """The query frontends' RPC addresses the worker serves too (clipper.rpc.fanout); empty
    with one frontend, the server itself."""
    environment: tuple[tuple[str, str], ...] = ()
    """Added to the worker's environment by the local placement (its GPUs: CUDA_VISIBLE_DEVICES)."""

    def limit_args(self) -> list[str]:
        """The worker's command-line flags for its limits."""
        return self.resources.limits.worker_args(self.default_memory_limit)


class RunningReplica(Protocol):
    """A started worker process."""

    @property
    def pid(self) -> int | None:
        """The OS pid, where there is one."""
        ...

    async def wait(self) -> int:
        """Wait for the process to exit; return its exit code."""
        ...

    def terminate(self) -> None:
        """Ask the process to exit (SIGTERM)."""
        ...

    def kill(self) -> None:
        """Kill the process (SIGKILL)."""
        ...


class Placement(Protocol):
    """Starts replicas. The reconciler decides how many; placement decides where."""

    async def start(self, launch: ReplicaLaunch) -> RunningReplica:
        """Start one replica's worker process."""
        ...


@dataclass(frozen=True, slots=True)
class ReplicaPlacement:
    """Where a replica runs, for operators: its node, or why it cannot be placed yet."""

    node: str | None = None
    node_id: str | None = None
    unschedulable: str | None = None


@runtime_checkable
class DescribedReplica(Protocol):
    """A RunningReplica that can tell where it runs (backends that place across machines)."""

    def placement_details(self) -> ReplicaPlacement:
        """Its node, or why it waits to be placed."""
        ...


def placement_details(replica: RunningReplica | None) -> ReplicaPlacement:
    """What `replica` tells of its placement; nothing for local processes."""
    if isinstance(replica, DescribedReplica):
        return replica.placement_details()
    return ReplicaPlacement()
