"""The query port as one lean ASGI app: Clipper's routes, the Open Inference Protocol's and
the OpenAI-compatible API's side by side in one route table (clipper.http.routes),
compiled once; no framework on the hot path.

A WebSocket (an ASGI `websocket` scope, from the lean server or uvicorn) goes to
clipper.frontend.clipper_api.websocket (`/{app}/stream`). A request goes through CORS (when
configured), then the table, which answers it from its
route or with its frontend's 404 or 405. The lean server also calls `respond` with each
request whose body is in: a route with a direct form (Clipper's predict) answers it there,
without ASGI messages or a task.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from clipper.frontend.clipper_api.query_api import ClipperQueryApi
from clipper.frontend.clipper_api.streaming import asks_stream
from clipper.frontend.clipper_api.websocket import StreamSocket
from clipper.frontend.oip.rest import V2RestApi
from clipper.frontend.openai_api.api import OpenAIApi
from clipper.http.cors import CorsPolicy
from clipper.http.reply import Headers, StreamedReply, send_reply, send_streamed
from clipper.http.routes import DirectReply, RouteTable

if TYPE_CHECKING:
    from clipper.tracing.session import QueryTracing

__all__ = ["DIRECT_TARGETS_HELD", "QueryPort"]

Scope = dict[str, Any]
DirectCall = Callable[[Headers, bytes, Callable[[DirectReply], None]], None]

DIRECT_TARGETS_HELD = 1024
"""Request targets whose direct handler `QueryPort.respond` remembers (matching one costs
more than the lookup); past this many it starts afresh."""


class QueryPort:
    """The ASGI app of the query port over Clipper's API and, when given, the OIP's REST
    and the OpenAI-compatible API."""

    def __init__(
        self,
        clipper_api: ClipperQueryApi,
        oip_rest: V2RestApi | None = None,
        cors: CorsPolicy | None = None,
        tracing: QueryTracing | None = None,
        openai: OpenAIApi | None = None,
    ) -> None:
        groups = [clipper_api.routes()]
        if oip_rest is not None:
            groups.append(oip_rest.routes())
        if openai is not None:
            groups.append(openai.routes())
        if tracing is not None:  # wrapped once here: tracing off adds nothing per request
            groups = [tracing.wrap_group(group) for group in groups]
        self.routes = RouteTable(groups)
        self._socket = StreamSocket(clipper_api)  # WebSockets: `/{app}/stream`
        self._cors = cors  # None: CORS off, nothing on the hot path
        self._direct_targets: dict[bytes, DirectCall] = {}  # request target -> its handler

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._socket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if self._cors is not None:
            send = await self._cors.intercept(scope, send)
            if send is None:  # a preflight, answered
                return
        reply = await self.routes.dispatch(scope, receive)
        if isinstance(reply, StreamedReply):
            await send_streamed(send, receive, reply)
        else:
            await send_reply(send, reply)

    def respond(
        self,
        method: bytes,
        url: bytes,
        headers: Headers,
        body: bytes,
        done: Callable[[DirectReply], None],
    ) -> bool:
        """The lean server's direct path (see clipper.http.http11.DirectRespond): True when
        a route's direct form took the request (it calls `done(reply)` exactly once); False
        (and `done` never called) sends it through the ASGI app."""
        if method != b"POST" or self._cors is not None or asks_stream(body):
            return False  # a streamed reply is sent through the ASGI app (the lean server
            # sends one asked for by `Accept: text/event-stream` there by itself)
        direct = self._direct_targets.get(url)
        if direct is None:
            direct = self._direct_for(url)
            if direct is None:
                return False
        direct(headers, body, done)
        return True

    def _direct_for(self, url: bytes) -> DirectCall | None:
        """The direct handler of a POST to `url` (remembered), or None."""
        if b"%" in url:  # the ASGI path decodes escapes; this one does not
            return None
        try:
            path = url.partition(b"?")[0].decode()
        except UnicodeDecodeError:
            return None
        found = self.routes.direct("POST", path)
        if found is None:
            return None
        if len(self._direct_targets) >= DIRECT_TARGETS_HELD:
            self._direct_targets.clear()  # bounded: any client can send any target
        direct = self._direct_targets[url] = partial(found[0], found[1])
        return direct


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
