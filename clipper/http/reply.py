"""The one response type of the query port's handlers, and how it goes out over ASGI.

(The lean server's direct path answers with a plain `(status, headers, body)` tuple instead,
see `clipper.http.http11.DirectReply`: it is built once per query on the hot path.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

__all__ = ["JSON_HEADERS", "Headers", "Reply", "json_reply", "send_reply"]

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
"""Shared by many replies: never mutated (a reply that needs more headers makes a new list)."""


class Reply:
    """A status, headers (without content-length: `send_reply` adds it) and body chunks."""

    __slots__ = ("chunks", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers = JSON_HEADERS) -> None:
        self.status = status
        self.headers = headers
        self.chunks: list[bytes] = [body]

    @property
    def body(self) -> bytes:
        """The whole body, joined."""
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


def json_reply(status: int, value: Any) -> Reply:
    """A JSON reply of a value orjson encodes as it is."""
    return Reply(status, orjson.dumps(value))


async def send_reply(send: Callable[[dict[str, Any]], Awaitable[None]], reply: Reply) -> None:
    """Send `reply` as ASGI messages: its start with content-length, then its chunks."""
    size = sum(len(chunk) for chunk in reply.chunks)
    headers = [*reply.headers, (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    last = len(reply.chunks) - 1
    for index, chunk in enumerate(reply.chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
