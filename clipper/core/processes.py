"""Whether a process runs: for the launcher (its detached server) and the local placement
(the server of leftover workers); a process adopted from an earlier control process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

__all__ = ["UNKNOWN_EXIT_CODE", "AdoptedProcess", "process_alive"]


def process_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (also when it is another
    user's: it runs, we may not signal it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs: trust kill(0)
    return state not in ("Z", "X")


UNKNOWN_EXIT_CODE = 255
"""What `AdoptedProcess` reports as its exit code: not our child, its code is not ours to
read."""
_POLL_INTERVAL_S = 0.1


class AdoptedProcess:
    """A running process this one did not start (a frontend or a worker of an earlier
    control process, re-adopted): waited for through a pidfd (Linux), else by polling;
    the same face as `asyncio.subprocess.Process` where the supervisors use it."""

    def __init__(self, pid: int) -> None:
        """Raises ProcessLookupError when `pid` is gone."""
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = None
        opener = getattr(os, "pidfd_open", None)
        if opener is not None:
            with contextlib.suppress(OSError):
                self._pidfd = opener(pid)
        if not process_alive(pid):
            self._close()
            raise ProcessLookupError(pid)

    async def wait(self) -> int:
        """Until it exits; UNKNOWN_EXIT_CODE."""
        if self.returncode is not None:
            return self.returncode
        if self._pidfd is not None:
            loop = asyncio.get_running_loop()
            exited: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(self._pidfd, readable)
            try:
                await exited
            finally:
                loop.remove_reader(self._pidfd)
        while process_alive(self.pid):  # noqa: ASYNC110 (no pidfd; or a zombie's last moments)
            await asyncio.sleep(_POLL_INTERVAL_S)
        self.returncode = UNKNOWN_EXIT_CODE
        self._close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal it, unless it has exited (its pid may be another's by now)."""
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self._pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
