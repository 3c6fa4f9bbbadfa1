"""A worker's own output (the model's prints, the worker's log lines) into its log file,
within its size cap at any output rate.

The server starts a worker with stdout and stderr appended to its log file, so that a worker
that fails before this module runs still leaves its traceback there. The worker then points
file descriptors 1 and 2 at a pipe, and a thread moves what arrives into the file, renaming
it to `.1` (`.1` to `.2`, and so on, `backups` kept) whenever the next write would take it
past `max_bytes`: the size is checked at each write, so the replica's logs never exceed
about `max_bytes * (backups + 1)`, whatever the rate. A model that prints faster than the
disk takes blocks on the full pipe: it slows itself, never the server or another replica.
At exit the pipe is drained into the file (a worker killed by a signal can lose the last
64 KiB of its output).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path

__all__ = ["CappedLog", "capture_output"]

_READ_BYTES = 64 * 1024
_DRAIN_TIMEOUT_S = 2.0


class CappedLog:
    """Appends to `path`, rotating by rename before a write would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, data: bytes) -> None:
        """Append `data`, rotating first if it does not fit (data over `max_bytes` is cut
        into pieces of at most that size, each one its own file)."""
        view = memoryview(data)
        while view:
            room = self.max_bytes - self._size
            if room <= 0 or (len(view) > room and self._size > 0):
                self._rotate()
                room = self.max_bytes
            piece = view[:room]
            written = os.write(self._fd, piece)
            self._size += written
            view = view[written:]

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def close(self) -> None:
        os.close(self._fd)


def capture_output(path: Path, max_bytes: int, backups: int) -> threading.Thread:
    """Send this process's stdout and stderr (file descriptors 1 and 2) into a `CappedLog`
    at `path`, through a pipe and a thread; drained at exit."""
    log = CappedLog(path, max_bytes, backups)
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def move() -> None:
        while data := os.read(read_end, _READ_BYTES):
            try:
                log.write(data)
            except OSError:
                continue  # a full disk: the output is dropped, the model goes on
        log.close()

    mover = threading.Thread(target=move, name="output-log", daemon=True)
    mover.start()

    def drain() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)  # the pipe's last writers go: EOF
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        mover.join(_DRAIN_TIMEOUT_S)

    atexit.register(drain)
    return mover
