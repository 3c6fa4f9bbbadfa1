"""A process adopted from an earlier control process (not our child to wait for)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from clipper.core.processes import UNKNOWN_EXIT_CODE, AdoptedProcess


async def test_an_adopted_process_is_waited_for_and_signalled() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # noqa: ASYNC220
    try:
        adopted = AdoptedProcess(child.pid)
        waiting = asyncio.ensure_future(adopted.wait())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        assert adopted.returncode is None
        adopted.terminate()
        await asyncio.to_thread(child.wait, 10)  # reaped by its parent, as init would
        assert await asyncio.wait_for(waiting, 5.0) == UNKNOWN_EXIT_CODE
        adopted.kill()  # gone: signals nobody (its pid may be another's by now)
    finally:
        child.kill()
        child.wait(10)


def test_a_gone_process_cannot_be_adopted() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(10)
    with pytest.raises(ProcessLookupError):
        AdoptedProcess(child.pid)
