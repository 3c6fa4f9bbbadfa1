"""Process memory tuning: large tensors (glibc only; elsewhere a no-op) and the garbage
collector's view of start-up objects.

glibc returns freed memory at the top of the heap to the OS once more than 128 KiB is
free, and serves blocks over 128 KiB..32 MiB with mmap: every multi-megabyte tensor then
costs fresh pages, and a page fault each 4 KiB (on a 2-core VM, measured: about half the
CPU time of an 8 MB gRPC round trip). Keeping freed memory in the heap up to a bound
lets the next tensor reuse warm pages.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from pathlib import Path

__all__ = [
    "freeze_startup_objects",
    "keep_freed_memory",
    "machine_memory_bytes",
    "own_memory_cgroup",
    "pause_collector",
    "physical_memory_bytes",
    "resume_collector",
    "return_freed_memory",
]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound on 64-bit


def keep_freed_memory(trim_threshold_bytes: int) -> bool:
    """Keep up to `trim_threshold_bytes` of freed memory in this process (0: glibc's own
    policy). Returns whether the setting took effect."""
    if trim_threshold_bytes <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols, libc's among them (find_library would run ldconfig).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mmap_threshold = min(_MMAP_THRESHOLD_MAX, trim_threshold_bytes)
    trim = bool(mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(min(trim_threshold_bytes, 2**31 - 1))))
    return trim and bool(mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)))


def return_freed_memory() -> bool:
    """Give the memory freed so far back to the OS now (glibc's `malloc_trim(0)`: the free
    top of the heap and the free pages inside it), whatever `keep_freed_memory` keeps. For
    after a burst (say, many large request bodies at once), not for steady traffic."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(malloc_trim(ctypes.c_size_t(0)))


def physical_memory_bytes() -> int:
    """The machine's memory (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


CGROUP_ROOT = Path("/sys/fs/cgroup")
_NO_LIMIT = 1 << 62  # cgroup v1 writes "no limit" as about 2**63 rounded to a page


def own_memory_cgroup(root: Path = CGROUP_ROOT) -> tuple[Path, str] | None:
    """This process's memory cgroup directory and its file naming the limit: cgroup v1's
    memory controller (`memory.limit_in_bytes`) or v2's unified tree (`memory.max`); None
    where /proc/self/cgroup names neither."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return root / "memory" / path.lstrip("/"), "memory.limit_in_bytes"
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            return root / path.lstrip("/"), "memory.max"
    return None


def machine_memory_bytes(root: Path = CGROUP_ROOT) -> int:
    """The memory this process's machine gives it: the lower of the RAM and every limit of
    its memory cgroup and the groups above it (0 where the OS says neither)."""
    lowest = physical_memory_bytes() or _NO_LIMIT
    group = own_memory_cgroup(root)
    if group is not None:
        directory, limit_file = group
        for level in (directory, *directory.parents):
            if not level.is_relative_to(root):
                break
            try:
                text = (level / limit_file).read_text().strip()
            except OSError:
                continue
            if text.isdigit():
                lowest = min(lowest, int(text))
    return 0 if lowest >= _NO_LIMIT else lowest


def freeze_startup_objects() -> None:
    """Move everything alive now (imported modules, the wiring of a started server or a
    loaded model) out of the garbage collector's reach. Full collections then scan only
    objects made since, instead of every module's objects: a long pause otherwise, and
    a tail-latency spike whenever one runs under load. Frozen objects are still freed
    by reference counting."""
    gc.collect()
    gc.freeze()


def pause_collector() -> None:
    """Stop automatic collections while a process starts: start-up makes mostly objects
    that live as long as the process (modules, the server's wiring), and every collection
    before they are frozen scans them all in vain (about 0.05-0.09 s of a server's start on
    a 2-core VM). Pair with `freeze_startup_objects` and `resume_collector`."""
    gc.disable()


def resume_collector() -> None:
    """Automatic collections again (after `pause_collector`)."""
    gc.enable()
