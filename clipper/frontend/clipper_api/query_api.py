"""Clipper's query API on the query port: its routes, and the direct form of predict that
the lean HTTP server calls without ASGI messages or a task (see clipper.http.routes).

    POST /{app}/predict   a prediction (Clipper's body: `input` or `input_batch`); with
                          `"stream": true` or `Accept: text/event-stream`, Server-Sent
                          Events (clipper.frontend.clipper_api.streaming)
    POST /{app}/update    feedback for the app's selection policy
    GET  /{app}/ready     the app's readiness (200, or 503)
    GET  /healthz         liveness;  GET /readyz  readiness of every app
    GET  /metrics         Prometheus metrics
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from clipper.core.exceptions import ClipperError, InternalError, InvalidInput, UnknownApplication
from clipper.core.input_limits import InputLimits
from clipper.core.inputs import PredictRequest, decode_predict_request, parse_priority
from clipper.core.outputs import dumps_outputs
from clipper.dataplane.answers import observe_answers
from clipper.dataplane.dataplane import SLO_MISSED, Answers, DataPlane, Prediction, slo_missed
from clipper.frontend.clipper_api.feedback import decode_update_request
from clipper.frontend.clipper_api.streaming import (
    QueryEvents,
    query_events,
    stream_limits,
    streamed_reply,
    wants_stream,
)
from clipper.frontend.error_replies import clipper_error_reply, error_headers
from clipper.http.errors import error_body, error_row
from clipper.http.reply import Headers, Reply
from clipper.http.request_body import PRIORITY_HEADER, TIMEOUT_HEADER, read_body
from clipper.http.routes import DirectReply, Request, Route, RouteGroup
from clipper.metrics.server_metrics import CONTENT_TYPE_LATEST, ServerMetrics
from clipper.payloads.tap import PayloadTap, offer_to_versions
from clipper.security.auth import QueryTokenGuard

__all__ = ["ClipperQueryApi"]

log = logging.getLogger("clipper.query")

_JSON_BLOCK = b"content-type: application/json\r\n"  # JSON headers, encoded for the direct path
_INTERNAL_ERROR: DirectReply = (
    500,
    _JSON_BLOCK,
    error_body(InternalError("unexpected server error")),
)
_READY = b'{"status":"ready"}'
_NOT_READY = b'{"status":"not ready"}'


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


class ClipperQueryApi:
    """Clipper's routes over the data plane (see the module's docstring)."""

    def __init__(
        self,
        dataplane: DataPlane,
        metrics: ServerMetrics,
        max_body_bytes: int,
        guard: QueryTokenGuard | None = None,
        limits: InputLimits | None = None,
        payloads: Mapping[str, PayloadTap] | None = None,
        version_payloads: Mapping[str, PayloadTap] | None = None,
        metrics_page: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        self._dataplane = dataplane
        # /metrics of several frontends: every process's, merged (clipper.frontends)
        self._metrics_page = metrics_page
        # app -> its payload tap, "name:version" -> a version's; kept current in place by
        # clipper.payloads.PayloadLog
        self._payloads = payloads if payloads is not None else {}
        self._version_payloads = version_payloads if version_payloads is not None else {}
        self._limits = limits if limits is not None else InputLimits()
        self._guard = guard if guard is not None else QueryTokenGuard()  # query tokens
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes

    def routes(self) -> RouteGroup:
        """Clipper's routes (answering errors in its shape) for the port's table."""
        return RouteGroup(
            [
                Route("POST", "/{app}/predict", self._predict_route, self._predict_direct),
                Route("POST", "/{app}/update", self._update_route),
                Route("GET", "/{app}/ready", self._app_ready),
                Route("GET", "/healthz", self._healthz),
                Route("GET", "/readyz", self._readyz),
                Route("GET", "/metrics", self._metrics_route),
            ],
            clipper_error_reply,
        )

    async def _healthz(self, request: Request) -> Reply:
        return Reply(200, b'{"status":"live"}')

    async def _readyz(self, request: Request) -> Reply:
        return Reply(200, _READY) if self._dataplane.all_ready() else Reply(503, _NOT_READY)

    async def _app_ready(self, request: Request) -> Reply:
        app_name = request.params["app"]
        if self._dataplane.app(app_name) is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        if self._dataplane.app_ready(app_name):
            return Reply(200, _READY)
        return Reply(503, _NOT_READY)

    async def _metrics_route(self, request: Request) -> Reply:
        page = self._metrics.render() if self._metrics_page is None else await self._metrics_page()
        return Reply(200, page, [(b"content-type", CONTENT_TYPE_LATEST.encode())])

    async def _predict_route(self, request: Request) -> Reply:
        app_name = request.params["app"]
        self._guard.require(app_name, request.headers)
        body = await read_body(request.headers, request.receive, self._max_body_bytes)
        if wants_stream(request.headers, body):
            return streamed_reply(self.query_events(app_name, body, request.headers))
        started = time.monotonic()
        predict, budget_us = self._decode(app_name, body, request.headers)
        deadline = started + budget_us / 1e6
        predictions = await self._dataplane.predict(
            app_name, predict.buffers, predict.version, deadline, predict.uid, predict.priority
        )
        return Reply(200, self._predict_body(app_name, predict, predictions, started, budget_us))

    def query_events(self, app_name: str, body: bytes, headers: Headers) -> QueryEvents:
        """A streamed predict request's events (Server-Sent Events' or a WebSocket's), once
        its query token is checked (see clipper.frontend.clipper_api.streaming)."""
        self._guard.require(app_name, headers)
        started = time.monotonic()
        predict, budget_us = self._decode(app_name, body, headers)
        deadline = started + budget_us / 1e6
        whole = partial(self._predict_body, app_name, predict, started=started,
                        budget_us=budget_us)  # fmt: skip
        return query_events(self._dataplane, app_name, predict, deadline, whole,
                            stream_limits(body))  # fmt: skip

    async def _update_route(self, request: Request) -> Reply:
        """Feedback for the app's selection policy (see clipper.frontend.clipper_api.feedback)."""
        app_name = request.params["app"]
        self._guard.require(app_name, request.headers)
        body = await read_body(request.headers, request.receive, self._max_body_bytes)
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        update = decode_update_request(body, app.input_type)
        reply = await self._dataplane.update(app_name, update)
        tap = self._payloads.get(app_name)
        if tap is not None:
            tap.offer_feedback(app_name, update, reply)
        return Reply(200, dumps_outputs(reply))

    def _decode(self, app_name: str, body: bytes, headers: Headers) -> tuple[PredictRequest, int]:
        """The decoded body of a predict request and its budget (microseconds)."""
        app = self._dataplane.app(app_name)
        if app is None:
            raise UnknownApplication(f"No application named {app_name!r}")
        request = decode_predict_request(body, app.input_type, self._limits)
        budget_us, priority = _terms(app.latency_slo_us, request.latency_slo_us, headers)
        if priority is not None and request.priority is None:  # the body's wins
            request = request._replace(priority=priority)
        return request, budget_us

    def _predict_body(
        self,
        app_name: str,
        request: PredictRequest,
        predictions: list[Prediction],
        started: float,
        budget_us: int,
    ) -> bytes:
        latency_s = time.monotonic() - started
        observe_answers(self._metrics, app_name, predictions, latency_s)
        tap = self._payloads.get(app_name)
        if tap is not None:
            tap.offer(app_name, request.buffers, predictions, latency_s)
        if self._version_payloads:
            offer_to_versions(
                self._version_payloads, app_name, request.buffers, predictions, latency_s
            )
        if request.is_batch:
            predictions = self._with_slo_stated(app_name, predictions, budget_us)
            return dumps_outputs({"batch_predictions": [_reply_dict(p) for p in predictions]})
        if predictions[0].is_default:  # the rare path: an explanation may need the SLO
            predictions = self._with_slo_stated(app_name, predictions, budget_us)
        return dumps_outputs(_reply_dict(predictions[0]))

    # -- the direct path of the lean HTTP server (see clipper.http.http11) ----------

    def _predict_direct(
        self,
        params: Mapping[str, str],
        headers: Headers,
        body: bytes,
        done: Callable[[DirectReply], None],
    ) -> None:
        """`POST /{app}/predict` with its body in: `done(reply)` is called exactly once, at
        once or when the answers are in."""
        app_name = params["app"]
        started = time.monotonic()
        try:
            self._guard.require(app_name, headers)
            request, budget_us = self._decode(app_name, body, headers)
            deadline = started + budget_us / 1e6
            then = partial(self._finish, done, app_name, request, started, budget_us)
            answers = self._dataplane.predict_then(
                app_name, request.buffers, request.version, deadline, request.uid, then,
                request.priority,
            )  # fmt: skip
        except ClipperError as exc:
            done(_direct_error(exc))
            return
        if answers is not None:
            body = self._predict_body(app_name, request, answers, started, budget_us)
            done((200, _JSON_BLOCK, body))

    def _finish(
        self,
        done: Callable[[DirectReply], None],
        app_name: str,
        request: PredictRequest,
        started: float,
        budget_us: int,
        answers: Answers,
    ) -> None:
        if isinstance(answers, ClipperError):
            done(_direct_error(answers))
        elif isinstance(answers, BaseException):
            log.error("predict on %s failed", app_name, exc_info=answers)
            done(_INTERNAL_ERROR)
        else:
            body = self._predict_body(app_name, request, answers, started, budget_us)
            done((200, _JSON_BLOCK, body))

    def _with_slo_stated(
        self, app_name: str, predictions: list[Prediction], budget_us: int
    ) -> list[Prediction]:
        """The answers, a missed SLO's explanation stating the budget it missed."""
        for prediction in predictions:
            if prediction.explanation == SLO_MISSED:
                break
        else:
            return predictions  # the common reply: no explanation to change
        app = self._dataplane.app(app_name)
        slo_us = app.latency_slo_us if app is not None else budget_us
        stated = slo_missed(budget_us, slo_us)
        return [
            p._replace(explanation=stated) if p.explanation == SLO_MISSED else p
            for p in predictions
        ]


def _direct_error(exc: ClipperError) -> DirectReply:
    return error_row(exc).http_status, error_headers(exc), error_body(exc)


def _terms(app_slo_us: int, body_slo_us: int | None, headers: Headers) -> tuple[int, int | None]:
    """The query's budget (the app's SLO, or a shorter one from the body or header) and the
    priority its `Clipper-Priority` header asks (None without one), in one pass."""
    budget = app_slo_us
    if body_slo_us is not None:
        budget = min(budget, body_slo_us)
    priority = None
    for name, value in headers:
        if name not in _TERMS_HEADERS:  # one test for the headers that say nothing of these
            continue
        if name == TIMEOUT_HEADER:
            if not value.isdigit() or int(value) <= 0:
                raise InvalidInput("Clipper-Timeout-Us must be a positive integer")
            budget = min(budget, int(value))
        else:
            asked = int(value) if value.isdigit() else value.decode(errors="replace")
            priority = parse_priority(asked, "Clipper-Priority")
    return budget, priority


_TERMS_HEADERS = frozenset({TIMEOUT_HEADER, PRIORITY_HEADER})
