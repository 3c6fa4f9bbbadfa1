"""The query API (port 1337) as a lean ASGI app: no framework on the hot path."""

from __future__ import annotations

import time
from typing import Any

import orjson

from clipper.dataplane.dataplane import DataPlane, Prediction
from clipper.exceptions import ClipperError, InvalidInput, PayloadTooLarge, UnknownApplication
from clipper.frontend.errors import error_body, error_response
from clipper.frontend.feedback import decode_update_request
from clipper.frontend.inputs import decode_predict_request
from clipper.frontend.v2.rest import V2RestApi
from clipper.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from clipper.outputs import json_default

__all__ = ["QueryApi"]

Scope = dict[str, Any]
Send = Any
Receive = Any

_JSON = [(b"content-type", b"application/json")]
_TIMEOUT_HEADER = b"clipper-timeout-us"


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
    ) -> None:
        self._dataplane = dataplane
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._v2 = v2

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self._v2 is not None and self._v2.handles(scope["path"]):
            await self._v2(scope, receive, send)  # the Open Inference Protocol, /openapi.json
            return
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
                    body = await self._read_body(scope, receive)
                    return 200, await self._predict(parts[0], body, scope), _JSON
                if len(parts) == 2 and parts[1] == "update":
                    body = await self._read_body(scope, receive)
                    return 200, await self._update(parts[0], body), _JSON
            elif method == "GET":
                return self._get(path)
        except ClipperError as exc:
            status, kind, cause = error_response(exc)
            return status, error_body(kind, cause), _JSON
        return 404, error_body("Not found", f"no route for {method} {path}"), _JSON

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
        return 404, error_body("Not found", f"no route for GET {path}"), _JSON

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self._max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _predict(self, app_name: str, body: bytes, scope: Scope) -> bytes:
        started = time.monotonic()
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        request = decode_predict_request(body, app.input_type)
        budget_us = _budget_us(app.latency_slo_us, request.latency_slo_us, scope)
        predictions = await self._dataplane.predict(
            app_name, request.buffers, request.version, started + budget_us / 1e6, request.uid
        )
        self._observe(app_name, predictions, time.monotonic() - started)
        if request.is_batch:
            return _dumps({"batch_predictions": [_reply_dict(p) for p in predictions]})
        return _dumps(_reply_dict(predictions[0]))

    async def _update(self, app_name: str, body: bytes) -> bytes:
        """Feedback for the app's selection policy (see clipper.frontend.feedback)."""
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        request = decode_update_request(body, app.input_type)
        return _dumps(await self._dataplane.update(app_name, request))

    def _observe(self, app_name: str, predictions: list[Prediction], latency_s: float) -> None:
        metrics = self._metrics
        metrics.requests.labels(app_name).inc()
        metrics.latency.labels(app_name).observe(latency_s)
        for prediction in predictions:
            if prediction.is_default:
                reason = (prediction.explanation or "").split(":")[0]
                metrics.defaults.labels(app_name, reason).inc()


def _dumps(reply: dict[str, Any]) -> bytes:
    """Outputs may hold numpy arrays and bytes (see clipper.outputs.to_wire_value)."""
    return orjson.dumps(reply, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _budget_us(app_slo_us: int, body_slo_us: int | None, scope: Scope) -> int:
    """The query's budget: the app's SLO, or a shorter one from the body or header."""
    budget = app_slo_us
    if body_slo_us is not None:
        budget = min(budget, body_slo_us)
    for name, value in scope["headers"]:
        if name == _TIMEOUT_HEADER:
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
