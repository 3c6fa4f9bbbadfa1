"""Supervised background tasks: a failure is logged and the task runs again; a task that
returns is done; cancelling the supervisor cancels the task."""

from __future__ import annotations

import asyncio
import logging

import pytest

from clipper.core.log_limits import RateLimitedLog
from clipper.core.supervision import supervised


async def test_a_failing_task_is_logged_and_started_again(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise OSError(24, "Too many open files")

    await asyncio.wait_for(supervised("flaky", flaky, first_backoff_s=0.01), 5)

    assert runs == 3
    assert caplog.text.count("background task flaky failed") == 2


async def test_cancelling_the_supervisor_cancels_the_task() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(supervised("forever", forever))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_rate_limited_log_writes_one_line_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.limits"), 10.0, lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.limits"):
        for _ in range(5):
            limited.warning("kind", "refused %s", "x")
        limited.warning("other", "another kind")
        now[0] = 11.0
        limited.warning("kind", "refused %s", "y")

    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "refused x",
        "another kind",
        "refused y (and 4 more like it in the last 10 s)",
    ]
