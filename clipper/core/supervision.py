"""Background tasks that outlive their failures: a failure is logged and the task started
again after a backoff, so no background task takes the server down with it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["supervised"]

log = logging.getLogger("clipper.server")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    first_backoff_s: float = FIRST_BACKOFF_S,
    max_backoff_s: float = MAX_BACKOFF_S,
) -> None:
    """Run `run()` until it returns or the task is cancelled. Each exception is logged
    and `run` starts again after a backoff: doubled after each failure up to
    `max_backoff_s`, back to `first_backoff_s` after a run that lasted longer than that."""
    backoff_s = first_backoff_s
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception:
            log.exception("background task %s failed; starting it again in %.1f s",
                          name, backoff_s)  # fmt: skip
        if time.monotonic() - started > max_backoff_s:
            backoff_s = first_backoff_s
        await asyncio.sleep(backoff_s)
        backoff_s = min(backoff_s * 2, max_backoff_s)
