"""WebSocket connections of the lean HTTP/1.1 server, as ASGI `websocket` scopes.

A request that asks to upgrade (`Upgrade: websocket`) leaves HTTP: the connection hands its
bytes to a `WebSocketSession`, which runs the app once with a `websocket` scope (the same
messages uvicorn gives, so the app runs on either server). wsproto does the handshake
(validated as RFC 6455 says, the 101 answer and its accept token) and every frame; nothing
here frames by hand.

Invariants: the app's first `receive` is `websocket.connect`; the handshake is answered
when the app sends `websocket.accept` (101), or `websocket.close` first (403), after which
the connection closes. A message over `max_message_bytes` closes the connection with 1009;
reading pauses while `INBOX_MESSAGES` messages wait for the app (a client cannot queue
unbounded work). After the peer closes or the connection is lost, `receive` answers
`websocket.disconnect` and `send` writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

__all__ = ["INBOX_MESSAGES", "WebSocketSession", "asks_upgrade"]

log = logging.getLogger("clipper.http")

AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
INBOX_MESSAGES = 16
TOO_BIG = 1009
GOING_AWAY = 1001


def asks_upgrade(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's (lower-cased) headers ask for a WebSocket."""
    return any(name == b"upgrade" and value.lower() == b"websocket" for name, value in headers)


class WebSocketSession:
    """One upgraded connection: bytes in via `feed`, the app's messages out to `transport`."""

    def __init__(
        self,
        transport: asyncio.Transport,
        max_message_bytes: int,
        client: tuple[str, int] | None,
    ) -> None:
        self._transport: asyncio.Transport | None = transport
        self._max_message_bytes = max_message_bytes
        self._client = client
        self._connection = WSConnection(ConnectionType.SERVER)
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._parts: list[Any] = []  # a fragmented message's parts so far (str or bytes)
        self._part_bytes = 0
        self._accepted = False
        self._closed = False  # no more writes: closed by either side, or lost
        self._paused = False

    def scope(self, url: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        """The ASGI scope of the upgrade request."""
        path, _, query = url.partition(b"?")
        protocols = [
            item.strip().decode("latin-1")
            for name, value in headers if name == b"sec-websocket-protocol"
            for item in value.split(b",")
        ]  # fmt: skip
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": path.decode("latin-1"),
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "client": self._client,
            "subprotocols": protocols,
        }

    def start(self, url: bytes, headers: list[tuple[bytes, bytes]], rest: bytes) -> None:
        """Feed wsproto the upgrade request (rebuilt: the HTTP parser has consumed it) and
        what followed it."""
        lines = [b"GET %s HTTP/1.1\r\n" % url]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        lines.append(b"\r\n")
        self.feed(b"".join(lines) + rest)

    async def run(self, app: AsgiApp, scope: dict[str, Any]) -> None:
        """Run the app on this connection; close it when the app returns."""
        try:
            await app(scope, self._receive, self._send)
        except Exception:
            log.exception("unhandled error in a WebSocket handler of %s", scope["path"])
        finally:
            if not self._accepted and not self._closed:
                self._write(self._connection.send(RejectConnection(status_code=500)))
            elif not self._closed:
                self._close(1000)
            self._closed = True
            if self._transport is not None:
                self._transport.close()

    # -- bytes from the peer -------------------------------------------------------------

    def feed(self, data: bytes | None) -> None:
        """Bytes read from the peer (None: the connection was lost)."""
        if data is None:
            self.lost()
            return
        try:
            self._connection.receive_data(data)
            for event in self._connection.events():
                self._on_event(event)
        except RemoteProtocolError as exc:
            log.info("closing a WebSocket from %s: %s", self._client, exc)
            self.lost()
            if self._transport is not None:
                self._transport.close()

    def lost(self) -> None:
        """The connection is gone: the app's next `receive` answers disconnect."""
        if not self._closed:
            self._closed = True
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        self._transport = None

    def going_away(self) -> None:
        """The server stops: close with 1001; the app's next `receive` answers disconnect."""
        if not self._closed:
            if self._accepted:
                self._close(GOING_AWAY, "server shutting down")
            self._closed = True
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        if self._transport is not None:
            self._transport.close()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Request):
            self._inbox.put_nowait({"type": "websocket.connect"})
        elif isinstance(event, TextMessage | BytesMessage):
            self._on_message(event)
        elif isinstance(event, Ping):
            self._write(self._connection.send(event.response()))
        elif isinstance(event, CloseConnection):
            if self._connection.state is ConnectionState.REMOTE_CLOSING:
                self._write(self._connection.send(event.response()))
            self._closed = True
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": event.code})

    def _on_message(self, event: TextMessage | BytesMessage) -> None:
        self._parts.append(event.data)
        self._part_bytes += len(event.data)
        if self._part_bytes > self._max_message_bytes:
            self._parts, self._part_bytes = [], 0
            self._close(TOO_BIG, "message too big")
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": TOO_BIG})
            return
        if not event.message_finished:
            return
        parts, self._parts, self._part_bytes = self._parts, [], 0
        if isinstance(event, TextMessage):
            self._inbox.put_nowait({"type": "websocket.receive", "text": "".join(parts)})
        else:
            self._inbox.put_nowait({"type": "websocket.receive", "bytes": b"".join(parts)})
        if self._inbox.qsize() >= INBOX_MESSAGES and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    # -- the app's side ------------------------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        message = await self._inbox.get()
        if self._paused and self._inbox.qsize() < INBOX_MESSAGES // 2:
            self._paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        if message["type"] == "websocket.disconnect":
            self._inbox.put_nowait(message)  # every later receive answers it too
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self._closed:
            return
        if kind == "websocket.accept":
            self._accepted = True
            accept = AcceptConnection(subprotocol=message.get("subprotocol"))
            self._write(self._connection.send(accept))
        elif kind == "websocket.send":
            text = message.get("text")
            event = TextMessage(text) if text is not None else BytesMessage(message["bytes"])
            self._write(self._connection.send(event))
        elif kind == "websocket.close":
            if not self._accepted:
                self._write(self._connection.send(RejectConnection(status_code=403)))
                self._closed = True
            else:
                self._close(message.get("code", 1000), message.get("reason") or "")

    def _close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(LocalProtocolError):  # closing already
            self._write(self._connection.send(CloseConnection(code, reason)))
        self._closed = True

    def _write(self, data: bytes) -> None:
        if self._transport is not None and data:
            self._transport.write(data)
