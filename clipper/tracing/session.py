"""A server's tracing: which requests are traced, the query surfaces' wrappers, the export.

A request is traced when its W3C `traceparent` is valid and sampled (its `tracestate` kept),
or, without a valid one, when a draw falls under the sample ratio; one with an unsampled
`traceparent` is not. The decision comes first: an untraced request creates no span and no
OpenTelemetry object, and the wrappers call the original handler at once. A traced request
gets a SERVER span named as OpenTelemetry's HTTP and RPC conventions say (`POST
/{app}/predict`, `inference.GRPCInferenceService/ModelInfer`), and its reply carries a
`traceparent` naming that span (an HTTP header; gRPC initial metadata).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import Any

from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, SpanKind, TraceFlags, TraceState

from clipper.core.exceptions import ClipperError
from clipper.core.types import ModelId
from clipper.dataplane.cache import PredictionCache
from clipper.dataplane.dataplane import DataPlane
from clipper.dataplane.model_serving import Clock
from clipper.http.errors import error_row
from clipper.http.reply import Headers, Reply
from clipper.http.routes import DirectDone, DirectReply, Handler, Request, Route, RouteGroup
from clipper.tracing.computations import BatchTracer, TracedComputations
from clipper.tracing.requests import CURRENT, RequestTrace, traceparent
from clipper.tracing.spans import SpanOutput

__all__ = ["GRPC_SERVICE", "TRACED_ROUTES", "QueryTracing"]

TRACED_ROUTES = ("/predict", "/infer", "/update")
"""POST routes whose pattern ends so are traced: Clipper's predict and feedback, the OIP's
infer."""
FEEDBACK_ROUTE = "/update"
"""A feedback request's span has no decode or reply child (its children are the models a
feedback naming an input asks), and no `clipper.default`."""
GRPC_SERVICE = "inference.GRPCInferenceService"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
NEW_TRACE = INVALID_SPAN_CONTEXT
"""`QueryTracing.parent` of a request traced without a caller's trace: a new trace's root."""
GrpcHandler = Callable[[Any, Any], Coroutine[Any, Any, Any]]


class QueryTracing:
    """Traces of the query path, exported through `output` (see the module's docstring)."""

    def __init__(
        self,
        output: SpanOutput,
        sample_ratio: float,
        dataplane: DataPlane,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.output = output
        self.sample_ratio = sample_ratio
        self._dataplane = dataplane
        self._draw = draw
        batches = BatchTracer(output)
        dataplane.trace_computations(partial(_traced_table, batches=batches))

    # -- which requests are traced ------------------------------------------------------

    def parent(self, traceparent: str | None, tracestate: str | None) -> SpanContext | None:
        """The caller's span a request's span is a child of (`NEW_TRACE`: none, the root of
        a new trace), or None when the request is not traced."""
        if traceparent is not None:
            found = _TRACEPARENT.fullmatch(traceparent.strip().lower())
            if found and found[1] != _ZERO_TRACE and found[2] != _ZERO_SPAN:
                flags = int(found[3], 16)
                if not flags & 1:
                    return None  # the caller did not sample it
                state = TraceState.from_header([tracestate]) if tracestate else None
                trace_id, span_id = int(found[1], 16), int(found[2], 16)
                return SpanContext(trace_id, span_id, True, TraceFlags(flags), state)
        if self.sample_ratio <= 0.0 or self._draw() >= self.sample_ratio:
            return None
        return NEW_TRACE

    def start(
        self,
        parent: SpanContext,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        phases: bool = True,
    ) -> RequestTrace:
        """A traced request's span, started now (`phases`: with decode and reply children)."""
        now_ns = time.time_ns()
        caller = None if parent is NEW_TRACE else parent
        span = self.output.start(name, caller, kind, now_ns, attributes)
        return RequestTrace(self.output, span, now_ns, phases)

    def _http_parent(self, headers: Headers) -> SpanContext | None:
        parent_header = state = None
        for key, value in headers:
            if key == b"traceparent":
                parent_header = value.decode("latin-1")
            elif key == b"tracestate":
                state = value.decode("latin-1")
        return self.parent(parent_header, state)

    def _http_attributes(
        self, route: Route, params: Mapping[str, str], path: str
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "http.request.method": route.method,
            "http.route": route.pattern,
            "url.path": path,
        }
        app = params.get("app") or params.get("name")
        if app is not None and self._dataplane.app(app) is not None:
            attributes["clipper.app"] = app
        return attributes

    # -- the query surfaces' wrappers ---------------------------------------------------

    def wrap_group(self, group: RouteGroup) -> RouteGroup:
        """`group` with its predict and infer routes traced (the others as they are)."""
        routes = [self._wrap_route(route) for route in group.routes]
        return RouteGroup(routes, group.error_reply, group.prefix)

    def _wrap_route(self, route: Route) -> Route:
        if route.method != "POST" or not route.pattern.endswith(TRACED_ROUTES):
            return route
        direct = route.direct
        traced_direct = None
        if direct is not None:
            traced_direct = partial(self._direct, route, direct)
        return Route(route.method, route.pattern, partial(self._handle, route), traced_direct)

    async def _handle(self, route: Route, request: Request) -> Reply:
        """An ASGI route's request, traced when sampled."""
        handler: Handler = route.handler
        parent = self._http_parent(request.headers)
        if parent is None:
            return await handler(request)
        path = request.scope.get("path", route.pattern)
        attributes = self._http_attributes(route, request.params, path)
        predicts = not route.pattern.endswith(FEEDBACK_ROUTE)
        name = f"{route.method} {route.pattern}"
        traced = self.start(parent, name, SpanKind.SERVER, attributes, phases=predicts)
        token = CURRENT.set(traced)
        try:
            reply = await handler(request)
        except BaseException as exc:
            _finish_http(traced, _status_of(exc), None, repr(exc))
            raise
        finally:
            CURRENT.reset(token)
        reply.headers = [*reply.headers, (b"traceparent", traceparent(traced.span).encode())]
        _finish_http(traced, reply.status, reply.body if predicts else None, None)
        return reply

    def _direct(
        self,
        route: Route,
        direct: Callable[[Mapping[str, str], Headers, bytes, DirectDone], None],
        params: Mapping[str, str],
        headers: Headers,
        body: bytes,
        done: DirectDone,
    ) -> None:
        """The lean server's direct path of a route, traced when sampled."""
        parent = self._http_parent(headers)
        if parent is None:
            direct(params, headers, body, done)
            return
        path = route.pattern.replace("{app}", params.get("app", "{app}"))
        attributes = self._http_attributes(route, params, path)
        traced = self.start(parent, f"{route.method} {route.pattern}", SpanKind.SERVER, attributes)
        token = CURRENT.set(traced)
        try:
            direct(params, headers, body, partial(_direct_done, traced, done))
        finally:
            CURRENT.reset(token)

    def wrap_grpc(self, method: str, handler: GrpcHandler) -> GrpcHandler:
        """A gRPC unary handler of the inference service, traced when sampled."""

        async def traced_call(request: Any, context: Any) -> Any:
            metadata = dict(
                (key, value)
                for key, value in context.invocation_metadata() or ()
                if key in ("traceparent", "tracestate") and isinstance(value, str)
            )
            parent = self.parent(metadata.get("traceparent"), metadata.get("tracestate"))
            if parent is None:
                return await handler(request, context)
            return await self._grpc_call(parent, method, handler, request, context)

        return traced_call

    async def _grpc_call(
        self, parent: SpanContext, method: str, handler: GrpcHandler, request: Any, context: Any
    ) -> Any:
        attributes: dict[str, Any] = {
            "rpc.system": "grpc",
            "rpc.service": GRPC_SERVICE,
            "rpc.method": method,
        }
        name = getattr(request, "model_name", None)
        if isinstance(name, str) and self._dataplane.app(name) is not None:
            attributes["clipper.app"] = name
        traced = self.start(parent, f"{GRPC_SERVICE}/{method}", SpanKind.SERVER, attributes)
        await context.send_initial_metadata((("traceparent", traceparent(traced.span)),))
        token = CURRENT.set(traced)
        try:
            response = await handler(request, context)
        except BaseException as exc:
            code = _grpc_code(context, exc)
            traced.span.attributes["rpc.grpc.status_code"] = code
            traced.finish(repr(exc) if code else None, None)
            raise
        finally:
            CURRENT.reset(token)
        traced.span.attributes["rpc.grpc.status_code"] = 0
        traced.finish(None, False)
        return response

    # -- the export ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Export what is buffered and stop the exporter's thread (bounded by its timeout)."""
        await asyncio.to_thread(self.output.shutdown)


def _traced_table(
    cache: PredictionCache,
    live: Mapping[ModelId, object],
    clock: Clock,
    batches: BatchTracer,
) -> TracedComputations:
    return TracedComputations(cache, live, clock, batches)


def _direct_done(traced: RequestTrace, done: DirectDone, reply: DirectReply) -> None:
    status, headers, body = reply
    header = traceparent(traced.span).encode()
    if isinstance(headers, bytes):
        headers = headers + b"traceparent: " + header + b"\r\n"
    else:
        headers = [*headers, (b"traceparent", header)]
    _finish_http(traced, status, body, None)
    done((status, headers, body))


def _finish_http(traced: RequestTrace, status: int, body: bytes | None, error: str | None) -> None:
    """End an HTTP request's span: its status, and whether a Clipper reply was a default."""
    traced.span.attributes["http.response.status_code"] = status
    default = None
    if body is not None and status == 200:  # (an OIP reply never holds a default)
        default = b'"default":true' in body
    if status >= 500 and error is None:
        error = f"HTTP {status}"
    traced.finish(error, default)


def _status_of(exc: BaseException) -> int:
    return error_row(exc).http_status if isinstance(exc, ClipperError) else 500


def _grpc_code(context: Any, exc: BaseException) -> int:
    """The call's gRPC status code number (what `context.abort` set; UNKNOWN otherwise)."""
    code = None
    try:
        code = context.code()
    except Exception:  # an older grpc.aio without `code()`
        code = None
    value = getattr(code, "value", None)
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return value[0]
    return 2  # UNKNOWN
