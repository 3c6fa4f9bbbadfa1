"""A lean HTTP/1.1 server for the query API: httptools parsing, one handler call per request.

The query API is the product's hot path. Running it through a general ASGI server costs
more than the rest of a query (measured in benchmarks/frontend.py), so the query port
speaks HTTP/1.1 here directly: parse with httptools, call the handler with the full body,
write one response. The handler has the ASGI signature `(scope, receive, send)` so the same
app also runs on uvicorn (and in tests); only `http.response.start` and one
`http.response.body` message are expected from it, except for a streamed reply: one whose
start has `transfer-encoding: chunked` (Server-Sent Events, clipper.http.reply.SSE_HEADERS)
is written as it is sent, each body message one chunk. After the body, the handler's
`receive` waits for the client to go away and then answers `http.disconnect` (as ASGI says).
A `GET` asking `Upgrade: websocket` (the only request in flight on its connection) leaves
HTTP: the app runs with an ASGI `websocket` scope over wsproto (clipper.http.websocket).

Invariants: requests on one connection are answered in order, one at a time (reading
pauses while a request is handled, so a pipelining client cannot queue unbounded work);
a request body over `max_body_bytes` is refused with 413 before it is read; a malformed
request gets 400 and the connection is closed.

Reads: the protocol is an `asyncio.BufferedProtocol`. Requests are read into one scratch
buffer per server (reads are synchronous on its one event loop, and the parser copies what
it keeps), except a body of at least `LARGE_BODY_BYTES` with a Content-Length: once its
headers are parsed it is received straight into a buffer of its size (the kernel copies
it there, nothing else does) and handed on as a memoryview; the parser, left mid-body, is
replaced by a fresh one.

Limits (`clipper.core.input_limits.HttpLimits`), each answered, then the connection closed:
a request line over `max_header_bytes` 414; headers over `max_header_bytes` (counted as received, so
a header that never ends is cut off within one read of the limit) or more than
`max_headers` fields 431; past `max_connections` (or `max_connections_per_client` from one
address) a new connection closes the longest-idle one, or gets 503 when none is idle
(clipper.http.connection_gate). Slow clients: each
connection holds one deadline, moved at each stage of a request (headers due
`header_timeout_s` after its first byte, the body `body_timeout_s` after the headers, the
next request `keep_alive_timeout_s` after an answer); one sweep per server, once a second,
answers 408 to those past it (an idle connection is just closed). No timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import httptools

from clipper.core.buffers import receive_buffer
from clipper.core.exceptions import (
    HeadersTooLarge,
    InternalError,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimeout,
    ServerBusy,
    TooManyConnections,
    UnsupportedTransferCoding,
    UriTooLong,
)
from clipper.core.input_limits import HttpLimits
from clipper.http.body_budget import BodyBudget, default_body_budget_bytes
from clipper.http.connection_gate import ConnectionGate
from clipper.http.errors import error_body
from clipper.http.websocket import WebSocketSession, asks_upgrade

__all__ = ["Http11Protocol", "serve_http11"]

log = logging.getLogger("clipper.http")

AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Body = bytes | memoryview  # a memoryview when received in place (LARGE_BODY_BYTES and up)
DirectReply = tuple[int, list[tuple[bytes, bytes]] | bytes, bytes]
DirectRespond = Callable[
    [bytes, bytes, list[tuple[bytes, bytes]], Body, Callable[[DirectReply], None]], bool
]
"""An app may also offer `respond(method, url, headers, body, done) -> bool`: a direct
path for its hottest requests, with no ASGI messages and no task. When it returns True it
calls `done((status, headers, body))` exactly once, at once or later; False sends the
request through the ASGI app as usual. `headers` may come encoded already, as a header
block (`b"name: value\r\n"` lines, no content-length): the server adds only the length."""

_STATUS_LINES = {
    code: f"HTTP/1.1 {code} {reason}\r\n".encode()
    for code, reason in (
        (200, "OK"), (204, "No Content"), (400, "Bad Request"), (401, "Unauthorized"),
        (403, "Forbidden"), (404, "Not Found"), (405, "Method Not Allowed"),
        (408, "Request Timeout"), (409, "Conflict"), (413, "Payload Too Large"),
        (414, "URI Too Long"), (415, "Unsupported Media Type"), (422, "Unprocessable Entity"),
        (431, "Request Header Fields Too Large"), (500, "Internal Server Error"),
        (501, "Not Implemented"), (503, "Service Unavailable"),
    )
}  # fmt: skip
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SHUTDOWN_GRACE_S = 5.0
# Canned answers of the connection itself, from the one error table (clipper.http.errors).
_ERROR_BODY_413 = error_body(PayloadTooLarge("request body over the limit"))
_ERROR_BODY_503_BUSY = error_body(
    ServerBusy("the server buffers as many request bodies as it may; try again")
)
_ERROR_BODY_400 = error_body(MalformedRequest("malformed HTTP request"))
_ERROR_BODY_501 = error_body(
    UnsupportedTransferCoding("a request body's only transfer coding may be chunked")
)
_INTERNAL_ERROR_REPLY = (
    500,
    [(b"content-type", b"application/json")],
    error_body(InternalError("unexpected server error")),
)
_ERROR_BODY_408 = error_body(RequestTimeout("the request did not arrive in time"))
_ERROR_BODY_414 = error_body(UriTooLong("request line over max_header_bytes"))
_ERROR_BODY_431_SIZE = error_body(HeadersTooLarge("headers over max_header_bytes"))
_ERROR_BODY_431_COUNT = error_body(HeadersTooLarge("more than max_headers fields"))
SWEEP_INTERVAL_S = 1.0
# A connection's stage decides what its deadline means (see the module's docstring).
_IDLE, _HEADERS, _BODY, _ANSWERING = range(4)
_now = time.monotonic


class _Rejected(Exception):
    """Raised in a parser callback: answer `status` with `body`, then close."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Status\r\n".encode()


_EVENT_STREAM = b"text/event-stream"
LARGE_BODY_BYTES = 1 << 18
SCRATCH_BYTES = 1 << 18


class _Request:
    """What the parser collected for one request."""

    __slots__ = ("body", "event_stream", "headers", "keep_alive", "method", "too_large", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[Body] = []
        self.too_large = False
        self.event_stream = False  # `Accept: text/event-stream`: the reply is streamed
        self.method = b""
        self.keep_alive = True


class _NoCallbacks:
    """The callbacks of a closed connection's parser: none."""


_CLOSED_PARSER = httptools.HttpRequestParser(_NoCallbacks())
"""What a closed connection holds instead of its parser (nothing feeds it)."""


class Http11Protocol(asyncio.BufferedProtocol):
    """One client connection."""

    def __init__(self, app: AsgiApp, limits: HttpLimits, server_state: _Connections) -> None:
        self._app = app
        self._respond: DirectRespond | None = getattr(app, "respond", None)
        self._limits = limits
        self._max_body_bytes = limits.max_body_bytes
        self._max_headers = limits.max_headers
        self._max_header_bytes = limits.max_header_bytes
        self._header_timeout_s = limits.header_timeout_s
        self._keep_alive_timeout_s = limits.keep_alive_timeout_s
        self._connections = server_state
        self._on_read = server_state.on_read
        self._stage = _IDLE
        self.deadline = math.inf  # monotonic time this connection's current stage must end
        self._header_bytes = 0  # bytes received since the last request's headers ended
        self._header_size = 0  # this request's line and header fields, as parsed
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request = _Request()
        self._body_size = 0
        # on_body's slow path runs past this size: the body limit, or for a chunked body the
        # bytes its reservations cover so far (see `_body_past_limit`)
        self._body_limit = limits.max_body_bytes
        self._reserved = 0  # bytes of the port's BodyBudget this connection holds
        self._large_body: memoryview | None = None  # a large body being received in place
        self._large_filled = 0
        self._ready: list[_Request] = []
        self._busy = False  # a request is being answered (one at a time, in order)
        self._keep_alive = True  # the one being answered keeps the connection open
        self._paused = False  # reading paused: requests are queued (see on_message_complete)
        self._closing = False
        self._client: tuple[str, int] | None = None
        # what to answer once the queued requests are: the parser refused what followed them
        self._rejection: tuple[int, bytes] | None = None
        self._lost: asyncio.Future[None] | None = None  # set by a handler that waits for it
        self._websocket: WebSocketSession | None = None  # the connection was upgraded
        self._websocket_task: asyncio.Task[None] | None = None  # its app, held till done

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport; refuse it (503) when the port's gate does."""
        self._transport = transport  # type: ignore[assignment]
        self._client = peer = transport.get_extra_info("peername")
        refusal = self._connections.gate.admit(self, peer[0] if peer else None)
        if refusal is not None:
            self._reply_and_close(503, error_body(TooManyConnections(refusal)))
            return
        self._connections.add(self)
        self.deadline = _now() + self._limits.header_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; a handler still running finishes and writes nowhere."""
        self._closing = True
        if self._websocket is not None:
            self._websocket.lost()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self._connections.gate.release(self)
        self._connections.discard(self)
        if self._reserved:  # the bodies go first, so that their memory is free to give back
            self._large_body = None
            self._request.body.clear()
            for request in self._ready:
                request.body.clear()
            self._connections.bodies.release(self._reserved)
            self._reserved = 0
        # The parser and the transport refer back to this protocol: without these cycles it
        # is freed when its last handler ends, not at the next full collection, which an
        # idle server may not run for a long while (a flood of connections stayed in memory).
        self._parser = _CLOSED_PARSER
        self._transport = None

    # -- clipper.http.connection_gate.GatedConnection -------------------------------------

    def is_idle(self) -> bool:
        """No request in progress: between requests, or none sent yet."""
        return self._stage == _IDLE and not self._busy and not self._ready

    def idle_rank(self) -> float:
        """The idle deadline: the connection nearest to being closed anyway goes first."""
        return self.deadline

    def evict(self) -> None:
        """Close to make room for a new connection."""
        self._close()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the next read goes: the rest of a large body, else the scratch buffer."""
        if self._large_body is not None:
            return self._large_body[self._large_filled :]
        return self._connections.scratch

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` were read into `get_buffer()`'s buffer."""
        if self._large_body is None:
            self.data_received(self._connections.scratch[:nbytes])
            return
        self._large_filled += nbytes
        if self._large_filled == len(self._large_body):
            self._parser = httptools.HttpRequestParser(self)  # the old one is mid-body
            self._large_body_complete()
            self._next()

    def data_received(self, data: bytes | memoryview) -> None:
        """Feed the parser; complete requests are queued and handled in order."""
        self._on_read()
        if self._websocket is not None:  # upgraded: every byte is the session's
            self._websocket.feed(bytes(data))
            return
        if self._stage < _BODY:
            self._header_bytes += len(data)
        if self._rejection is not None:
            return  # bytes read before reading paused: the parser has failed already
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            rejected = exc.__context__
            if isinstance(rejected, _Rejected):
                self._reject(rejected.status, rejected.body)
            else:
                self._reject(400, _ERROR_BODY_400)
            return
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(bytes(data[upgrade.args[0] :]) if upgrade.args else b"")
            return
        if self._stage == _HEADERS and self._header_bytes > self._limits.max_header_bytes:
            self._reject(431, _ERROR_BODY_431_SIZE)
            return
        self._next()

    def _upgrade(self, rest: bytes) -> None:
        """The parser stopped at an upgrade: a WebSocket's (the only request on the
        connection) leaves HTTP for a `WebSocketSession`; any other is refused."""
        request = self._ready[-1] if self._ready else None
        if (
            request is None or len(self._ready) > 1 or self._busy
            or request.method != b"GET" or not asks_upgrade(request.headers)
            or self._transport is None
        ):  # fmt: skip
            self._reject(400, _ERROR_BODY_400)
            return
        self._ready.clear()
        self._busy = True
        self._stage = _ANSWERING  # never idle, never swept: the session runs to its end
        self.deadline = math.inf
        session = WebSocketSession(self._transport, self._max_body_bytes, self._client)
        self._websocket = session
        scope = session.scope(request.url, request.headers)
        session.start(request.url, request.headers, rest)
        self._websocket_task = asyncio.get_running_loop().create_task(session.run(self._app, scope))
        self._websocket_task.add_done_callback(_log_failure)

    def _reject(self, status: int, body: bytes) -> None:
        """The bytes after the complete requests are refused: answer those requests (sent
        before in the same stream, so they are owed an answer), then `status`, and close."""
        if not self._busy and not self._ready:
            self._reply_and_close(status, body)
            return
        self._rejection = (status, body)
        self._stage = _ANSWERING  # no request is being received any more
        if self._transport is not None:
            self._transport.pause_reading()
        self._next()

    def expire(self, now: float) -> None:
        """The sweep found this connection past its deadline: 408 mid-request, else close."""
        if self._stage in (_HEADERS, _BODY):
            log.info("closing a slow client connection from %s", self._client)
            self._reply_and_close(408, _ERROR_BODY_408)
        elif self._stage == _IDLE:
            self._close()

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = _Request()
        self._body_size = 0
        self._header_size = 0
        self._stage = _HEADERS
        self.deadline = _now() + self._header_timeout_s

    def on_url(self, url: bytes) -> None:
        self._request.url += url
        self._header_size += len(url)
        if self._header_size > self._max_header_bytes:
            raise _Rejected(414, _ERROR_BODY_414)

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._request.headers
        headers.append((name.lower(), value))
        self._header_size += len(name) + len(value) + 4  # ": " and CRLF
        if len(headers) > self._max_headers:
            raise _Rejected(431, _ERROR_BODY_431_COUNT)

    def on_headers_complete(self) -> None:
        # The fields' size is checked once all are in: until then one read bounds it.
        if self._header_size > self._max_header_bytes:
            raise _Rejected(431, _ERROR_BODY_431_SIZE)
        self._stage = _BODY
        self.deadline = _now() + self._limits.body_timeout_s
        self._header_bytes = 0
        request = self._request
        expects_continue = False
        length = -1  # the one Content-Length; -2 when the parser alone must decide the body
        for name, value in request.headers:
            if name == b"content-length":
                if value.isdigit():
                    request.too_large = int(value) > self._max_body_bytes
                    length = int(value) if length == -1 else -2
                else:
                    length = -2
            elif name == b"transfer-encoding":
                if value.strip().lower() != b"chunked":  # gzip, chunked: never read as is
                    raise _Rejected(501, _ERROR_BODY_501)
                length = -2  # chunked (the parser refuses it with a Content-Length)
                self._body_limit = min(LARGE_BODY_BYTES, self._max_body_bytes)
            elif name == b"expect":
                expects_continue |= value.lower() == b"100-continue"
            elif name == b"accept" and _EVENT_STREAM in value:
                request.event_stream = True
        if request.too_large:  # refused before its body is read
            raise _Rejected(413, _ERROR_BODY_413)
        if expects_continue and self._transport is not None:
            self._transport.write(_CONTINUE)
        request.method = self._parser.get_method()
        request.keep_alive = self._parser.should_keep_alive()
        if length >= LARGE_BODY_BYTES:
            self._reserve(length)
            self._large_body, self._large_filled = receive_buffer(length), 0

    def on_body(self, body: bytes) -> None:
        large = self._large_body
        if large is not None:  # its first bytes came with the headers
            end = self._large_filled + len(body)
            large[self._large_filled : end] = body
            self._large_filled = end
            if end == len(large):
                self._large_body_complete()
            return
        self._body_size += len(body)
        if self._body_size > self._body_limit:
            self._body_past_limit()
        if not self._request.too_large:
            self._request.body.append(body)

    def _body_past_limit(self) -> None:
        """Over the body limit: too large. A chunked body under it past what its
        reservations cover: reserve the next stretch (503 when the budget is spent)."""
        if self._body_size > self._max_body_bytes:
            self._request.too_large = True
            return
        stretch = max(LARGE_BODY_BYTES, self._body_size - self._body_limit)
        self._reserve(stretch)
        self._body_limit = min(self._body_limit + stretch, self._max_body_bytes)

    def _reserve(self, size: int) -> None:
        if not self._connections.bodies.reserve(size):
            raise _Rejected(503, _ERROR_BODY_503_BUSY)
        self._reserved += size

    def _release_bodies(self) -> None:
        """Nothing is being received or waits: what this connection reserved is free."""
        self._connections.bodies.release(self._reserved)
        self._reserved = 0
        self._body_limit = self._max_body_bytes

    def _large_body_complete(self) -> None:
        """The large body is all in: the request is complete (the parser may not know)."""
        assert self._large_body is not None
        self._request.body.append(self._large_body)
        self._large_body = None
        if self._stage == _BODY:
            self.on_message_complete()

    def on_message_complete(self) -> None:
        if self._stage != _BODY:  # ended in place already (see `_large_body_complete`)
            return
        self._stage = _ANSWERING
        self.deadline = math.inf
        self._ready.append(self._request)
        if self._transport is not None and len(self._ready) > 1 and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    # -- handling -----------------------------------------------------------------------

    def _next(self) -> None:
        if self._busy or not self._ready or self._closing:
            return
        request = self._ready.pop(0)
        if request.too_large:
            self._reply_and_close(413, _ERROR_BODY_413)
            return
        self._busy = True
        self._keep_alive = keep_alive = request.keep_alive and not self._connections.draining
        body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
        respond = self._respond
        if respond is not None and not request.event_stream:  # the app's direct path (see
            # `DirectRespond`: a whole body at once, so never for a client asking for events)
            try:
                if respond(request.method, request.url, request.headers, body, self._answer):
                    return
            except Exception:
                method = request.method.decode()
                log.exception("unhandled error answering %s %r", method, request.url)
                self._answer(_INTERNAL_ERROR_REPLY)
                return
        task = asyncio.get_running_loop().create_task(self._handle(request, body, keep_alive))
        task.add_done_callback(_log_failure)

    def _answer(self, reply: DirectReply) -> None:
        """The direct path's `done`: write the reply of the request being answered."""
        status, headers, body = reply
        keep_alive = self._keep_alive
        if not isinstance(headers, bytes):
            self._write(_Response(status, headers, body), keep_alive)
        elif self._transport is not None and not self._closing:  # an encoded header block
            end = b"\r\n" if keep_alive else b"connection: close\r\n\r\n"
            head = b"%s%scontent-length: %d\r\n%s" % (_status_line(status), headers, len(body), end)
            self._transport.write(head + body)
        self._answered(keep_alive)

    async def _handle(self, request: _Request, body: Body, keep_alive: bool) -> None:
        url = httptools.parse_url(request.url)
        path = url.path.decode("utf-8", "replace")
        scope = {
            "type": "http",
            "method": request.method.decode(),
            "path": path,
            "query_string": url.query or b"",
            "headers": request.headers,
            "client": self._client,
        }
        response = _Response(write=self._write_streamed)
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self._disconnected()
            return {"type": "http.disconnect"}

        try:
            await self._app(scope, receive, response.send)
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], path)
            if response.streamed:  # its head is out: all that can be done is to close
                self._close()
                return
            response = _Response.internal_error()
        keep_alive = keep_alive and self._keep_alive  # False once draining (see `drain`)
        if response.streamed:
            self._answered(keep_alive and not response.unfinished)
            return
        self._write(response, keep_alive)
        self._answered(keep_alive)

    async def _disconnected(self) -> None:
        """Return once the connection is lost."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        if self._closing:
            return
        await asyncio.shield(self._lost)

    def _write_streamed(self, data: bytes) -> None:
        """A streamed reply's bytes (its head, a chunk), written at once."""
        if self._transport is not None and not self._closing:
            self._transport.write(data)

    def _answered(self, keep_alive: bool) -> None:
        """The current request's response is written: close, or go on with the next."""
        self._busy = False
        if self._reserved and not self._ready and self._stage in (_IDLE, _ANSWERING):
            self._release_bodies()
        if not keep_alive:
            self._close()
            return
        if self._ready:
            self._next()
            return
        if self._rejection is not None:  # the requests before the refused bytes are answered
            self._reply_and_close(*self._rejection)
            return
        if self._stage == _ANSWERING:
            self._stage = _IDLE
            self.deadline = _now() + self._keep_alive_timeout_s
        if self._paused and self._transport is not None and not self._closing:
            self._paused = False  # reading paused while requests were queued
            self._transport.resume_reading()

    def _write(self, response: _Response, keep_alive: bool) -> None:
        if self._transport is None or self._closing:
            return
        head = [_status_line(response.status)]
        has_length = False
        for name, value in response.headers:
            head.append(name + b": " + value + b"\r\n")
            has_length = has_length or name == b"content-length"
        if not has_length:
            size = len(response.body) + sum(len(chunk) for chunk in response.rest)
            head.append(b"content-length: %d\r\n" % size)
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self._transport.write(b"".join(head) + response.body)
        for chunk in response.rest:  # large bodies sent in parts go uncopied
            self._transport.write(chunk)

    def _reply_and_close(self, status: int, body: bytes) -> None:
        response = _Response(status, [(b"content-type", b"application/json")], body)
        response.headers.append((b"content-length", str(len(body)).encode()))
        self._write(response, keep_alive=False)
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def drain(self, idle_s: float) -> None:
        """A graceful stop: the reply being answered, or the next request's if one comes
        within `idle_s` (then the sweep closes it), says `connection: close` and the
        connection closes after it, so a keep-alive client never writes a request into a
        connection being closed; a WebSocket is told the server is going away (1001)."""
        if self._websocket is not None:
            self._websocket.going_away()
            return
        self._keep_alive = False
        if self.is_idle():
            self.deadline = min(self.deadline, _now() + idle_s)

    def shutdown(self) -> None:
        """Close the connection once the current request (if any) is answered; a WebSocket
        at once, telling its peer the server is going away (1001)."""
        if self._websocket is not None:
            self._websocket.going_away()
        elif not self._busy:
            self._close()
        else:
            self._ready.clear()


def _drop(data: bytes) -> None:
    """Where a response that cannot stream would write: nowhere (it never streams)."""


class _Response:
    """The ASGI response messages of one request, collected."""

    __slots__ = (
        "body", "can_stream", "headers", "rest", "status", "streamed", "unfinished", "write",
    )  # fmt: skip

    def __init__(
        self,
        status: int = 500,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
        write: Callable[[bytes], None] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.rest: list[bytes] = []  # body messages after the first, e.g. binary tensors
        self.can_stream = write is not None
        self.write = write if write is not None else _drop  # a streamed reply's destination
        self.streamed = False  # its head is written: body messages are chunks
        self.unfinished = False  # streamed, and its last chunk not yet sent

    async def send(self, message: dict[str, Any]) -> None:
        if self.streamed:
            self._send_chunk(message)
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
            if self.can_stream and (b"transfer-encoding", b"chunked") in self.headers:
                self._start_streamed()
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if self.body and chunk:
                self.rest.append(chunk)
            else:
                self.body = self.body or chunk

    def _start_streamed(self) -> None:
        self.streamed = self.unfinished = True
        head = [_status_line(self.status)]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.headers)
        head.append(b"\r\n")
        self.write(b"".join(head))

    def _send_chunk(self, message: dict[str, Any]) -> None:
        """One body message of a streamed reply, as a chunk; the last one ends it."""
        chunk = message.get("body", b"")
        if chunk and self.unfinished:
            self.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if not message.get("more_body", False) and self.unfinished:
            self.unfinished = False
            self.write(b"0\r\n\r\n")

    @classmethod
    def internal_error(cls) -> _Response:
        status, headers, body = _INTERNAL_ERROR_REPLY
        return cls(status, list(headers), body)


class _Connections(set[Any]):
    """The open connections; `all_closed` is set whenever there are none. `on_read` is
    called on every read (see clipper.http.loop_polling)."""

    def __init__(
        self,
        on_read: Callable[[], None] = lambda: None,
        gate: ConnectionGate | None = None,
        bodies: BodyBudget | None = None,
    ) -> None:
        super().__init__()
        self.on_read = on_read
        self.gate = gate if gate is not None else ConnectionGate(HttpLimits().max_connections)
        self.bodies = bodies if bodies is not None else BodyBudget(default_body_budget_bytes())
        self.all_closed = asyncio.Event()
        self.all_closed.set()
        self.draining = False  # every answer now says `connection: close` (see `drain`)
        # The read buffer every connection shares: each read is consumed before the next.
        self.scratch = memoryview(bytearray(SCRATCH_BYTES))

    async def sweep(self) -> None:
        """Expire the connections past their deadline, once a second, until cancelled."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = _now()
            for connection in [c for c in self if c.deadline < now]:
                connection.expire(now)

    def add(self, connection: Any) -> None:
        super().add(connection)
        self.all_closed.clear()

    def discard(self, connection: Any) -> None:
        super().discard(connection)
        if not self:
            self.all_closed.set()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("HTTP handler task failed", exc_info=task.exception())


async def serve_http11(
    app: AsgiApp,
    sock: Any,
    max_body_bytes: int,
    stop: asyncio.Event,
    ssl_context: ssl.SSLContext | None = None,
    limits: HttpLimits | None = None,
    on_read: Callable[[], None] = lambda: None,
    drain_idle_s: float | None = None,
) -> None:
    """Serve `app` on a bound listening socket until `stop` is set, then close connections
    once their current request is answered. With `ssl_context`, connections speak TLS.
    `on_read` is called on every read of a client connection. With `drain_idle_s` the stop
    is graceful for keep-alive clients (`Http11Protocol.drain`): each connection is
    answered once more, `connection: close`, if it asks within that time."""
    limits = replace(limits or HttpLimits(), max_body_bytes=max_body_bytes)
    gate = ConnectionGate(limits.max_connections, limits.max_connections_per_client)
    budget = limits.max_buffered_body_bytes or default_body_budget_bytes()
    connections = _Connections(on_read, gate, BodyBudget(budget))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Http11Protocol(app, limits, connections), sock=sock, ssl=ssl_context
    )
    sweeper = loop.create_task(connections.sweep())
    try:
        await stop.wait()
    finally:
        server.close()
        connections.draining = drain_idle_s is not None
        for connection in list(connections):
            if drain_idle_s is None:
                connection.shutdown()
            else:
                connection.drain(drain_idle_s)  # the sweep closes those that stay idle
        if drain_idle_s is None:
            sweeper.cancel()
        # Requests still being answered finish before the workers go (bounded).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connections.all_closed.wait(), SHUTDOWN_GRACE_S)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
