"""Per-replica OS limits, applied by the worker to itself before it loads the model.

Memory: a cgroup v1 memory controller where this process may create a group, a child of
the group it was started in, so every limit above still holds (the kernel then kills the
worker, and only it, when the group's usage passes the limit). Else, for a limit the model
version set, `RLIMIT_AS` (the model's allocations past the limit raise MemoryError; it
bounds virtual address space, which exceeds resident memory); for the cluster's default
limit, a watch of the worker's resident memory (`memory_watch`: RLIMIT_AS at a default
would break models that reserve address space, CUDA's among them). Either way the replica
is reported as having exceeded its memory limit (`MEMORY_LIMIT_EXIT_CODE`): the worker
exits with it after a MemoryError or when the watch sees the limit passed, and the
placement turns the cgroup's OOM kill into it (`reap_cgroup`).
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

from clipper.core.process_memory import CGROUP_ROOT, machine_memory_bytes, own_memory_cgroup
from clipper.core.processes import process_alive
from clipper.core.resources import DefaultMemoryLimit, ReplicaLimits
from clipper.worker.memory_watch import watch_resident_memory

__all__ = [
    "MEMORY_LIMIT_EXCEEDED",
    "MEMORY_LIMIT_EXIT_CODE",
    "apply_limits",
    "cgroup_path",
    "nice_for_share",
    "reap_cgroup",
    "sweep_cgroups",
]

log = logging.getLogger("clipper.worker")

MEMORY_LIMIT_EXIT_CODE = 12  # ENOMEM: the worker exceeded its memory limit
MEMORY_LIMIT_EXCEEDED = "memory limit exceeded"
_CFS_WEIGHT_STEP = 1.25  # each nice level weighs 1.25 times less (kernel sched_prio_to_weight)


def nice_for_share(share: float) -> int:
    """The nice value whose CFS weight is `share` (0 < share <= 1) of a default process's."""
    if not 0 < share <= 1:
        raise ValueError(f"cpu share must be in (0, 1], got {share}")
    return min(19, round(-math.log(share) / math.log(_CFS_WEIGHT_STEP)))


def memory_cgroup_root(root: Path = CGROUP_ROOT) -> Path | None:
    """The cgroup v1 memory group this process runs in, where workers make theirs."""
    group = own_memory_cgroup(root)
    return group[0] if group is not None and group[1] == "memory.limit_in_bytes" else None


def cgroup_path(pid: int, root: Path | None = None) -> Path | None:
    """The memory cgroup a worker with `pid`, started by this process, makes for itself
    (None: no cgroup v1 memory controller)."""
    parent = memory_cgroup_root() if root is None else root
    return None if parent is None else parent / f"clipper-worker-{pid}"


def apply_limits(
    limits: ReplicaLimits, memory_mode: str = "auto", default_memory: str | None = None
) -> list[str]:
    """Apply `limits` to this process; a description of each limit applied, for the log.

    `memory_mode` of a version's own limit: "auto" (cgroup v1 where writable, else
    RLIMIT_AS), "rlimit" or "watch". `default_memory`: the cluster's default
    (`DefaultMemoryLimit` text), where `limits` set no memory limit: a cgroup, else the watch.
    """
    applied = []
    if limits.memory_limit_bytes:
        applied.append(_limit_memory(limits.memory_limit_bytes, memory_mode))
    elif limits.memory_limit_bytes is None and default_memory is not None:
        default = DefaultMemoryLimit.parse(default_memory)
        limit = default.resolve(machine_memory_bytes())
        if limit is not None:
            how = _limit_memory(limit, "auto-watch" if memory_mode == "auto" else memory_mode)
            applied.append(f"{how}: the cluster's default replica_memory_limit, {default}")
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
    """Enforce `limit_bytes` by `mode`: "auto" (cgroup, else RLIMIT_AS), "auto-watch"
    (cgroup, else the watch), "rlimit" or "watch"."""
    if mode in ("auto", "auto-watch"):
        try:
            _join_memory_cgroup(limit_bytes)
        except OSError as exc:
            fallback = "RLIMIT_AS" if mode == "auto" else "a watch of resident memory"
            log.info("no writable cgroup v1 memory controller (%s); using %s", exc, fallback)
        else:
            return f"memory {limit_bytes} bytes (cgroup v1)"
        mode = "rlimit" if mode == "auto" else "watch"
    if mode == "watch":
        watch_resident_memory(limit_bytes, MEMORY_LIMIT_EXIT_CODE)
        return f"memory {limit_bytes} bytes (resident memory watched)"
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return f"memory {limit_bytes} bytes (RLIMIT_AS)"


def _join_memory_cgroup(limit_bytes: int) -> None:
    """Make this process's own memory cgroup with the limit and move into it."""
    group = cgroup_path(os.getpid())
    if group is None or not (group.parent / "memory.limit_in_bytes").exists():
        raise OSError("no cgroup v1 memory controller")
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


def reap_cgroup(pid: int | None, exit_code: int, root: Path | None = None) -> int:
    """After worker `pid` exited with `exit_code`: remove its memory cgroup, if any, and
    return MEMORY_LIMIT_EXIT_CODE when the kernel killed it there for memory, else
    `exit_code`. Called by whoever started the worker, on its node."""
    if pid is None:
        return exit_code
    group = cgroup_path(pid, root)
    if group is None or not group.is_dir():
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


def sweep_cgroups(root: Path | None = None) -> int:
    """Remove the memory cgroups of workers that are gone without being reaped (their
    starter was killed); how many. A live worker's group is never touched, nor a group
    that still holds a process (the kernel refuses to remove it)."""
    parent = memory_cgroup_root() if root is None else root
    if parent is None:
        return 0
    removed = 0
    for group in parent.glob("clipper-worker-*"):
        pid = group.name.rpartition("-")[2]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(OSError):
                group.rmdir()
                removed += 1
    return removed
