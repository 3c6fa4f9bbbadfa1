"""Clipper's streamed predictions over a WebSocket: `/{app}/stream` on the query port.

A client (a browser, typically) opens `ws://<host>:<port>/<app>/stream` and sends queries
as text messages, one at a time, each a predict body (`{"input": ...}`, with `version`,
`latency_slo_micros`, `stream_timeout_s` and `max_pieces` as for Server-Sent Events). Each
query is answered by one message per piece as the model yields it,
`{"type": "piece", "piece": <piece>}`, then one `{"type": "end", <the predict reply>,
"finish_reason": ...}` or `{"type": "error", "error", "cause", "code", "query_id"}`: the
events of clipper.frontend.clipper_api.streaming, on the same query path. While a query
streams the client may send `{"cancel": true}`: the model stops before its next step and
the query ends with `finish_reason` "cancelled" (its `output` the pieces so far); closing
the socket cancels it too. A query refused (malformed, unknown app, a second one while one
streams) is answered with an error message and the socket stays open. The app's query
token, if it has one, goes in the upgrade request's `Authorization` header.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.frontend.clipper_api.query_api import ClipperQueryApi
from clipper.frontend.clipper_api.streaming import QueryEvents
from clipper.http.errors import error_body

__all__ = ["STREAM_SUFFIX", "StreamSocket", "socket_app_name"]

STREAM_SUFFIX = "/stream"
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def socket_app_name(path: str) -> str | None:
    """The app of a WebSocket path `/{app}/stream`; None for any other path."""
    if not path.endswith(STREAM_SUFFIX):
        return None
    app = path[1 : -len(STREAM_SUFFIX)]
    return app if app and "/" not in app and path.startswith("/") else None


class StreamSocket:
    """Serves one WebSocket of `/{app}/stream` (see the module's docstring)."""

    def __init__(self, api: ClipperQueryApi) -> None:
        self._api = api

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """ASGI entry point of a `websocket` scope."""
        app_name = socket_app_name(scope["path"])
        if (await receive())["type"] != "websocket.connect":
            return
        if app_name is None:
            await send({"type": "websocket.close", "code": 1008})  # 403, before the accept
            return
        await send({"type": "websocket.accept"})
        headers = scope["headers"]
        incoming: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(receive())
        try:
            while incoming is not None:
                message = await incoming
                if message["type"] == "websocket.disconnect":
                    return
                incoming = asyncio.ensure_future(receive())
                try:
                    events = self._api.query_events(app_name, _text(message), headers)
                except ClipperError as exc:
                    await _send_json(send, b'{"type":"error",' + error_body(exc)[1:])
                    continue
                incoming = await _stream(events, incoming, receive, send)
        finally:
            await _forget(incoming)


async def _forget(incoming: asyncio.Future[dict[str, Any]] | None) -> None:
    """Cancel a pending receive and wait for it to end."""
    if incoming is not None and not incoming.done():
        incoming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await incoming


async def _stream(
    events: QueryEvents,
    incoming: asyncio.Future[dict[str, Any]],
    receive: Receive,
    send: Send,
) -> asyncio.Future[dict[str, Any]] | None:
    """Send one query's events while reading what the client sends meanwhile; the pending
    receive to go on with (a message that came once the last event was on its way is the
    next query's), or None once the client went away."""
    ending = asyncio.Event()  # set before the last event is sent
    pump = asyncio.ensure_future(_pump(events, send, ending))
    try:
        while not pump.done():  # `incoming` is the one pending receive (owned here)
            waiting: set[asyncio.Future[Any]] = {pump, incoming}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if ending.is_set():
                break  # what came (or comes) now is the next query's
            if not incoming.done():
                continue
            message = incoming.result()
            if message["type"] == "websocket.disconnect":
                events.cancel()
                return None
            incoming = asyncio.ensure_future(receive())
            if _asks_cancel(message):
                events.cancel()
            else:
                busy = InvalidInput("one query at a time: cancel this one or wait for its end")
                await _send_json(send, b'{"type":"error",' + error_body(busy)[1:])
        await pump
        return incoming
    except BaseException:
        await _forget(incoming)
        raise
    finally:
        if not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


async def _pump(events: QueryEvents, send: Send, ending: asyncio.Event) -> None:
    async for name, data in events.events:
        if name == "":
            await _send_json(send, b'{"type":"piece","piece":%s}' % data)
        else:
            ending.set()
            await _send_json(send, b'{"type":"%s",%s' % (name.encode(), data[1:]))


def _asks_cancel(message: dict[str, Any]) -> bool:
    try:
        parsed = orjson.loads(_text(message))
    except (orjson.JSONDecodeError, InvalidInput):
        return False
    return isinstance(parsed, dict) and parsed.get("cancel") is True


def _text(message: dict[str, Any]) -> bytes:
    text = message.get("text")
    if text is not None:
        return str(text).encode()
    data = message.get("bytes")
    if data is None:
        raise InvalidInput("an empty WebSocket message")
    return bytes(data)


async def _send_json(send: Send, data: bytes) -> None:
    await send({"type": "websocket.send", "text": data.decode()})
