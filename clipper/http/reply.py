"""The one response type of the query port's handlers, and how it goes out over ASGI.

(The lean server's direct path answers with a plain `(status, headers, body)` tuple instead,
see `clipper.http.http11.DirectReply`: it is built once per query on the hot path.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

__all__ = [
    "JSON_HEADERS",
    "SSE_HEADERS",
    "Headers",
    "Reply",
    "StreamedReply",
    "json_reply",
    "send_reply",
    "send_streamed",
    "sse_event",
]

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


SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"transfer-encoding", b"chunked"),
]
"""A Server-Sent Events reply's: chunked, so each event goes out as it is sent (the lean
server and uvicorn both write a reply with this header as it comes, not buffered)."""


def sse_event(data: bytes, name: str = "") -> bytes:
    """One Server-Sent Event (`data` is one line, e.g. of JSON; `name` its `event:`)."""
    head = b"event: %s\n" % name.encode() if name else b""
    return b"%sdata: %s\n\n" % (head, data)


class StreamedReply(Reply):
    """A reply whose body is sent chunk by chunk as `chunks_of` yields them (`send_streamed`);
    `on_disconnect` is called once if the client goes away before the end."""

    __slots__ = ("chunks_of", "on_disconnect")

    def __init__(
        self,
        chunks_of: AsyncIterator[bytes],
        on_disconnect: Callable[[], None],
        headers: Headers = SSE_HEADERS,
    ) -> None:
        super().__init__(200, b"", headers)
        self.chunks_of = chunks_of
        self.on_disconnect = on_disconnect


async def send_streamed(
    send: Callable[[dict[str, Any]], Awaitable[None]],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    reply: StreamedReply,
) -> None:
    """Send a streamed reply: its start, each chunk as it comes, then the end. A watcher
    reads `receive` meanwhile: an `http.disconnect` calls `reply.on_disconnect` at once (the
    chunks' producer then ends), and nothing more is sent."""
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    disconnected = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, disconnected, reply.on_disconnect))
    try:
        async for chunk in reply.chunks_of:
            if disconnected.is_set():
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not disconnected.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _watch_disconnect(
    receive: Callable[[], Awaitable[dict[str, Any]]],
    disconnected: asyncio.Event,
    on_disconnect: Callable[[], None],
) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    disconnected.set()
    on_disconnect()


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
