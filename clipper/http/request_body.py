"""What both query surfaces read from an ASGI request the same way: its body, bounded by the
body limit, and the name of the header that shortens a query's deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from clipper.core.exceptions import PayloadTooLarge

__all__ = ["PRIORITY_HEADER", "TIMEOUT_HEADER", "read_body"]

TIMEOUT_HEADER = b"clipper-timeout-us"
"""`Clipper-Timeout-Us: n`: a budget in microseconds shorter than the app's SLO."""
PRIORITY_HEADER = b"clipper-priority"
"""`Clipper-Priority: n`: the query's priority class, at most its app's (0 to 9)."""


async def read_body(
    headers: Iterable[tuple[bytes, bytes]],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    limit_bytes: int,
) -> bytes:
    """The whole body of a request; PayloadTooLarge once it is known to exceed
    `limit_bytes` (from its Content-Length before reading, else as it arrives)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limit_bytes:
            raise PayloadTooLarge(f"request body over the limit of {limit_bytes} bytes")
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise PayloadTooLarge(f"request body over the limit of {limit_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
