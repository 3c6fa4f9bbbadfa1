"""The query API (port 1337) as a lean ASGI app: no framework on the hot path."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from clipper.core.exceptions import (
    AuthError,
    ClipperError,
    InternalError,
    InvalidInput,
    NotFound,
    UnknownApplication,
)
from clipper.core.input_limits import InputLimits
from clipper.core.inputs import PredictRequest, decode_predict_request
from clipper.core.outputs import json_default
from clipper.dataplane.dataplane import Answers, DataPlane, Prediction
from clipper.frontend.clipper_api.feedback import decode_update_request
from clipper.frontend.oip.rest import V2RestApi
from clipper.http.cors import CorsPolicy
from clipper.http.errors import error_body, error_row, oip_error_body
from clipper.http.request_body import TIMEOUT_HEADER, read_body
from clipper.metrics.server_metrics import CONTENT_TYPE_LATEST, ServerMetrics
from clipper.security.auth import QueryTokenGuard, auth_headers

__all__ = ["QueryApi"]

Scope = dict[str, Any]
Send = Any
Receive = Any
Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, Headers | bytes, bytes]
"""What the direct path answers: status, headers (no content-length; as a list, or as an
encoded header block) and body."""
log = logging.getLogger("clipper.query")

_JSON = [(b"content-type", b"application/json")]
_JSON_BLOCK = b"content-type: application/json\r\n"  # _JSON, encoded for the direct path
_INTERNAL_ERROR: Reply = (500, _JSON, error_body(InternalError("unexpected server error")))
_PREDICT_URLS_HELD = 1024
"""Request targets whose app `QueryApi.respond` remembers (parsing one costs more than
the lookup); past this many it starts afresh."""


def _reply_dict(prediction: Prediction) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "query_id": prediction.query_id,
        "output": prediction.output,
        "default": prediction.is_default,
        "models": prediction.models,
    }
    if prediction.is_default:
        reply["default_explanation"] = prediction.explanation
    if prediction.partial:
        reply["partial"] = True
    return reply


class QueryApi:
    """`POST /<app>/predict`, `POST /<app>/update`, `/healthz`, `/readyz`, `/metrics`."""

    def __init__(
        self,
        dataplane: DataPlane,
        metrics: ServerMetrics,
        max_body_bytes: int,
        v2: V2RestApi | None = None,
        cors: CorsPolicy | None = None,
        guard: QueryTokenGuard | None = None,
        limits: InputLimits | None = None,
    ) -> None:
        self._dataplane = dataplane
        self._limits = limits if limits is not None else InputLimits()
        self._guard = guard if guard is not None else QueryTokenGuard()  # query tokens
        self._cors = cors  # None: CORS off, nothing on the hot path
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._v2 = v2
        self._predict_urls: dict[bytes, str] = {}  # request target -> app (see `respond`)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self._cors is not None:
            send = await self._cors.intercept(scope, send)
            if send is None:  # a preflight, answered
                return
        if self._v2 is not None and self._v2.handles(scope["path"]):
            denied = self._guard.v2_names and _v2_denied(self._guard, scope)
            if not denied:
                await self._v2(scope, receive, send)  # the Open Inference Protocol
                return
            status, body, headers = denied
        else:
            status, body, headers = await self._handle(scope, receive)
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[Any]]:
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if method == "POST":
                parts = path.strip("/").split("/")
                if len(parts) == 2 and parts[1] == "predict":
                    self._guard.require(parts[0], scope["headers"])
                    body = await self._read_body(scope, receive)
                    return 200, await self._predict(parts[0], body, scope), _JSON
                if len(parts) == 2 and parts[1] == "update":
                    self._guard.require(parts[0], scope["headers"])
                    body = await self._read_body(scope, receive)
                    return 200, await self._update(parts[0], body), _JSON
            elif method == "GET":
                return self._get(path)
        except ClipperError as exc:
            headers = auth_headers(exc) if isinstance(exc, AuthError) else _JSON
            return error_row(exc).http_status, error_body(exc), headers
        return 404, error_body(NotFound(f"no route for {method} {path}")), _JSON

    def _get(self, path: str) -> tuple[int, bytes, list[Any]]:
        if path == "/healthz":
            return 200, b'{"status":"live"}', _JSON
        if path == "/readyz":
            if self._dataplane.all_ready():
                return 200, b'{"status":"ready"}', _JSON
            return 503, b'{"status":"not ready"}', _JSON
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "ready":
            if self._dataplane.app(parts[0]) is None:
                raise UnknownApplication(f"No application named {parts[0]!r}")
            if self._dataplane.app_ready(parts[0]):
                return 200, b'{"status":"ready"}', _JSON
            return 503, b'{"status":"not ready"}', _JSON
        if path == "/metrics":
            content_type = CONTENT_TYPE_LATEST.encode()
            return 200, self._metrics.render(), [(b"content-type", content_type)]
        return 404, error_body(NotFound(f"no route for GET {path}")), _JSON

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        return await read_body(scope["headers"], receive, self._max_body_bytes)

    async def _predict(self, app_name: str, body: bytes, scope: Scope) -> bytes:
        started = time.monotonic()
        request, deadline = self._decode(app_name, body, scope["headers"], started)
        predictions = await self._dataplane.predict(
            app_name, request.buffers, request.version, deadline, request.uid
        )
        return self._predict_body(app_name, request, predictions, started)

    def _decode(
        self, app_name: str, body: bytes, headers: Headers, started: float
    ) -> tuple[PredictRequest, float]:
        """The decoded body of a predict request and its deadline."""
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        request = decode_predict_request(body, app.input_type, self._limits)
        budget_us = _budget_us(app.latency_slo_us, request.latency_slo_us, headers)
        return request, started + budget_us / 1e6

    def _predict_body(
        self, app_name: str, request: PredictRequest, predictions: list[Prediction], started: float
    ) -> bytes:
        self._observe(app_name, predictions, time.monotonic() - started)
        if request.is_batch:
            return _dumps({"batch_predictions": [_reply_dict(p) for p in predictions]})
        return _dumps(_reply_dict(predictions[0]))

    # -- the direct path of the lean HTTP server (see clipper.http.http11) ----------

    def respond(
        self,
        method: bytes,
        url: bytes,
        headers: Headers,
        body: bytes,
        done: Callable[[Reply], None],
    ) -> bool:
        """Answer `POST /<app>/predict` without ASGI messages or a task: `done(reply)` is
        called exactly once, at once or when the answers are in. False (and `done` never
        called) for any other request: the server then goes through the ASGI app."""
        if method != b"POST" or self._cors is not None:
            return False
        app_name = self._predict_urls.get(url)
        if app_name is None:
            app_name = _predict_app(url)
            if app_name is None:
                return False
            if len(self._predict_urls) >= _PREDICT_URLS_HELD:
                self._predict_urls.clear()  # bounded: any client can send any target
            self._predict_urls[url] = app_name
        started = time.monotonic()
        try:
            self._guard.require(app_name, headers)
            request, deadline = self._decode(app_name, body, headers, started)
            then = partial(self._finish, done, app_name, request, started)
            answers = self._dataplane.predict_then(
                app_name, request.buffers, request.version, deadline, request.uid, then
            )
        except ClipperError as exc:
            done(_error_reply(exc))
            return True
        if answers is not None:
            done((200, _JSON_BLOCK, self._predict_body(app_name, request, answers, started)))
        return True

    def _finish(
        self,
        done: Callable[[Reply], None],
        app_name: str,
        request: PredictRequest,
        started: float,
        answers: Answers,
    ) -> None:
        if isinstance(answers, ClipperError):
            done(_error_reply(answers))
        elif isinstance(answers, BaseException):
            log.error("predict on %s failed", app_name, exc_info=answers)
            done(_INTERNAL_ERROR)
        else:
            done((200, _JSON_BLOCK, self._predict_body(app_name, request, answers, started)))

    async def _update(self, app_name: str, body: bytes) -> bytes:
        """Feedback for the app's selection policy (see clipper.frontend.clipper_api.feedback)."""
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        request = decode_update_request(body, app.input_type)
        return _dumps(await self._dataplane.update(app_name, request))

    def _observe(self, app_name: str, predictions: list[Prediction], latency_s: float) -> None:
        metrics = self._metrics
        app_metrics = metrics.for_app(app_name)
        app_metrics.requests.inc()
        app_metrics.latency.observe(latency_s)
        for prediction in predictions:
            if prediction.is_default:
                reason = (prediction.explanation or "").split(":")[0]
                metrics.defaults.labels(app_name, reason).inc()


def _predict_app(url: bytes) -> str | None:
    """The app of a `/<app>/predict` request target (query string ignored), else None."""
    parts = url.partition(b"?")[0].split(b"/")
    if len(parts) != 3 or parts[0] or parts[2] != b"predict" or b"%" in parts[1]:
        return None
    return parts[1].decode("utf-8", "replace")


def _v2_denied(guard: QueryTokenGuard, scope: Scope) -> tuple[int, bytes, list[Any]] | None:
    """A V2 error answer when a POST to a model or app that needs a query token lacks it."""
    parts = [part for part in scope["path"].split("/") if part]  # as V2RestApi splits it
    if scope["method"] != "POST" or len(parts) < 3 or parts[1] != "models":
        return None
    try:
        guard.require_v2(parts[2], scope["headers"])
    except AuthError as exc:
        return error_row(exc).http_status, oip_error_body(exc), auth_headers(exc)
    return None


def _dumps(reply: dict[str, Any]) -> bytes:
    """Outputs may hold numpy arrays and bytes (see clipper.core.outputs.to_wire_value)."""
    return orjson.dumps(reply, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _error_reply(exc: ClipperError) -> Reply:
    headers = auth_headers(exc) if isinstance(exc, AuthError) else _JSON
    return error_row(exc).http_status, headers, error_body(exc)


def _budget_us(app_slo_us: int, body_slo_us: int | None, headers: Headers) -> int:
    """The query's budget: the app's SLO, or a shorter one from the body or header."""
    budget = app_slo_us
    if body_slo_us is not None:
        budget = min(budget, body_slo_us)
    for name, value in headers:
        if name == TIMEOUT_HEADER:
            if not value.isdigit() or int(value) <= 0:
                raise InvalidInput("Clipper-Timeout-Us must be a positive integer")
            budget = min(budget, int(value))
    return budget


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
