"""Processes the benchmark starts: each in its own process group, measured (PSS of the whole
tree) and stopped by the ids it started, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ProcessTree", "free_port", "pss_bytes", "tree_pids"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The command name may hold spaces and parentheses: split after the last ')'.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
    return parents


def tree_pids(root: int) -> list[int]:
    """`root` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parent_pids().items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def pss_bytes(pids: Sequence[int]) -> int:
    """Proportional set size of `pids` summed (shared pages split between sharers)."""
    total_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
    return total_kib * 1024


class ProcessTree:
    """A command started in a new session (its own process group), with its output in a log."""

    def __init__(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._seen: set[int] = {self.process.pid}

    @property
    def pid(self) -> int:
        """The root process's id (also its process group's id)."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the root process runs."""
        return self.process.poll() is None

    def pids(self) -> list[int]:
        """The root and its descendants now; remembered so `stop` can find strays."""
        pids = tree_pids(self.pid)
        self._seen.update(pids)
        return pids

    def pss_bytes(self) -> int:
        """PSS of the whole tree now."""
        return pss_bytes(self.pids())

    def last_error(self) -> str:
        """The log's last line that names an error, else its last line."""
        with contextlib.suppress(OSError):
            lines = [
                line.strip() for line in self.log_path.read_text(errors="replace").splitlines()
            ]
            errors = [line for line in lines if "Error" in line or "Exception" in line]
            return (errors or [line for line in lines if line] or [""])[-1]
        return ""

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the group, wait up to `grace_s`, then SIGKILL the group and every process
        of the tree seen so far (descendants that left the group or were reparented)."""
        if self.alive():
            self.pids()
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace_s)
        self._signal_group(signal.SIGKILL)
        for pid in self._seen - {self.pid}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)
        self._wait_gone(time.monotonic() + 5.0)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _wait_gone(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not any(Path(f"/proc/{pid}").exists() for pid in self._seen - {self.pid}):
                return
            time.sleep(0.05)
