"""A watch of the worker's resident memory: the memory limit where no cgroup enforces it.

A daemon thread reads the process's resident set size from /proc every `interval_s`
(about 10 us a read) and, once it passes the limit, logs it and ends the process with the
memory-limit exit code; the placement reports it as it reports a cgroup's OOM kill. The
limit may be overshot by what the model allocates in one interval, or for as long as it
holds the GIL in native code; processes the model starts are not counted.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["WATCH_INTERVAL_S", "resident_bytes", "watch_resident_memory"]

log = logging.getLogger("clipper.worker")

WATCH_INTERVAL_S = 0.05
_STATM = Path("/proc/self/statm")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory (0 where /proc does not say)."""
    try:
        return int(_STATM.read_bytes().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def watch_resident_memory(
    limit_bytes: int, exit_code: int, interval_s: float = WATCH_INTERVAL_S
) -> threading.Thread:
    """Start the watch: the process exits with `exit_code` once its resident memory passes
    `limit_bytes`."""
    thread = threading.Thread(
        target=_watch, args=(limit_bytes, exit_code, interval_s), name="memory-watch", daemon=True
    )
    thread.start()
    return thread


def _watch(limit_bytes: int, exit_code: int, interval_s: float) -> None:
    stop = threading.Event()  # never set: a sleep the interpreter's shutdown does not block
    while not stop.wait(interval_s):
        resident = resident_bytes()
        if resident > limit_bytes:
            log.error(
                "memory limit exceeded: %d bytes resident, the limit is %d bytes; exiting",
                resident,
                limit_bytes,
            )
            sys.stderr.flush()
            os._exit(exit_code)
