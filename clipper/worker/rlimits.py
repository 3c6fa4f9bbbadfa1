"""Per-replica OS limits, applied by the worker to itself before it loads the model.

Memory: a cgroup v1 memory controller where this process may create a group (the kernel
then kills the worker, and only it, when the group's usage passes the limit), else
`RLIMIT_AS` (the model's allocations past the limit raise MemoryError; note it bounds
virtual address space, which exceeds resident memory). Either way the replica is reported
as having exceeded its memory limit (`MEMORY_LIMIT_EXIT_CODE`): the worker exits with it
after a MemoryError, and the placement turns the cgroup's OOM kill into it (`reap_cgroup`).
CPU share: a nice value with the same CFS weight ratio. Open files: `RLIMIT_NOFILE`.

Invariant: limits only ever tighten (soft and hard limits are set together, so the model's
code cannot raise them again).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import resource
from pathlib import Path

from clipper.core.resources import ReplicaLimits

__all__ = [
    "MEMORY_LIMIT_EXCEEDED",
    "MEMORY_LIMIT_EXIT_CODE",
    "apply_limits",
    "cgroup_path",
    "nice_for_share",
    "reap_cgroup",
]

log = logging.getLogger("clipper.worker")

MEMORY_LIMIT_EXIT_CODE = 12  # ENOMEM: the worker exceeded its memory limit
MEMORY_LIMIT_EXCEEDED = "memory limit exceeded"
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
_CFS_WEIGHT_STEP = 1.25  # each nice level weighs 1.25 times less (kernel sched_prio_to_weight)


def nice_for_share(share: float) -> int:
    """The nice value whose CFS weight is `share` (0 < share <= 1) of a default process's."""
    if not 0 < share <= 1:
        raise ValueError(f"cpu share must be in (0, 1], got {share}")
    return min(19, round(-math.log(share) / math.log(_CFS_WEIGHT_STEP)))


def cgroup_path(pid: int, root: Path = CGROUP_V1_MEMORY) -> Path:
    """The memory cgroup a worker with `pid` makes for itself."""
    return root / f"clipper-worker-{pid}"


def apply_limits(limits: ReplicaLimits, memory_mode: str = "auto") -> list[str]:
    """Apply `limits` to this process; a description of each limit applied, for the log.

    `memory_mode`: "auto" (cgroup v1 where writable, else RLIMIT_AS) or "rlimit".
    """
    applied = []
    if limits.memory_limit_bytes is not None:
        applied.append(_limit_memory(limits.memory_limit_bytes, memory_mode))
    if limits.cpu_share is not None:
        nice = nice_for_share(limits.cpu_share)
        os.nice(nice)
        applied.append(f"cpu share {limits.cpu_share:g} (nice {nice})")
    if limits.max_open_files is not None:
        count = limits.max_open_files
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))
        applied.append(f"at most {count} open files")
    return applied


def _limit_memory(limit_bytes: int, mode: str) -> str:
    if mode == "auto":
        try:
            _join_memory_cgroup(limit_bytes)
        except OSError as exc:
            log.info("no writable cgroup v1 memory controller (%s); using RLIMIT_AS", exc)
        else:
            return f"memory {limit_bytes} bytes (cgroup v1)"
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return f"memory {limit_bytes} bytes (RLIMIT_AS)"


def _join_memory_cgroup(limit_bytes: int) -> None:
    """Make this process's own memory cgroup with the limit and move into it."""
    if not (CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        raise OSError("no cgroup v1 memory controller")
    group = cgroup_path(os.getpid())
    group.mkdir(exist_ok=True)
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():  # memory plus swap: the limit cannot be dodged by swapping
            swap.write_text(str(limit_bytes))
        with contextlib.suppress(OSError):
            (group / "memory.swappiness").write_text("0")
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        raise


def reap_cgroup(pid: int | None, exit_code: int, root: Path = CGROUP_V1_MEMORY) -> int:
    """After worker `pid` exited with `exit_code`: remove its memory cgroup, if any, and
    return MEMORY_LIMIT_EXIT_CODE when the kernel killed it there for memory, else
    `exit_code`. Called by whoever started the worker, on its node."""
    if pid is None:
        return exit_code
    group = cgroup_path(pid, root)
    if not group.is_dir():
        return exit_code
    oom_killed = exit_code < 0 and _oom_kills(group) > 0
    with contextlib.suppress(OSError):
        group.rmdir()
    return MEMORY_LIMIT_EXIT_CODE if oom_killed else exit_code


def _oom_kills(group: Path) -> int:
    """OOM kills in `group` (older kernels: times the limit was hit)."""
    try:
        for line in (group / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return int((group / "memory.failcnt").read_text())
    except (OSError, ValueError):
        return 0
