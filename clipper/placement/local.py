"""Local placement: one subprocess per replica on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from clipper.placement.base import ReplicaLaunch

__all__ = ["LocalPlacement", "LocalReplica"]


class LocalReplica:
    """A worker subprocess."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @property
    def pid(self) -> int | None:
        """The worker's pid."""
        return self._process.pid

    async def wait(self) -> int:
        """Wait for exit; return the exit code (negative: killed by that signal)."""
        return await self._process.wait()

    def terminate(self) -> None:
        """SIGTERM, if still running."""
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()

    def kill(self) -> None:
        """SIGKILL, if still running."""
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()


class LocalPlacement:
    """Starts `python -m clipper.worker` subprocesses, output appended to a log file."""

    def __init__(self, python: str | None = None) -> None:
        self._python = python or sys.executable

    async def start(self, launch: ReplicaLaunch) -> LocalReplica:
        """Spawn the worker in its own session, so a Ctrl-C to the server's terminal
        does not reach it; it exits by itself when the server goes (PDEATHSIG, EOF)."""
        replica = launch.replica_id
        args = [
            "-m", "clipper.worker",
            "--connect", launch.rpc_address,
            "--model", replica.model.name,
            "--version", replica.model.version,
            "--replica", str(replica.replica),
            "--input-type", launch.input_type.value,
            "--artifact", str(launch.artifact),
            "--heartbeat-interval-s", str(launch.heartbeat_interval_s),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Opening a local log file for append does not block the loop in any way that matters.
        with open(launch.log_path, "ab") as log_file:  # noqa: ASYNC230
            process = await asyncio.create_subprocess_exec(
                self._python,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return LocalReplica(process)
