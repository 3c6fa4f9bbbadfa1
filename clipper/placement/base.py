"""The placement interface: who starts worker processes, and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clipper.types import InputType, ReplicaId

__all__ = ["Placement", "ReplicaLaunch", "RunningReplica"]


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    """Everything needed to start one replica's worker."""

    replica_id: ReplicaId
    input_type: InputType
    artifact: Path
    rpc_address: str
    log_path: Path
    heartbeat_interval_s: float


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
