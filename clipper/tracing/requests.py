"""One sampled request: its span on the query port, the context its children take, and the
`decode` and `reply` spans drawn from the moments the data plane reports.

`CURRENT` holds the request being traced while its surface calls into the data plane (set
and reset around that synchronous call, or around the awaited call of an ASGI or gRPC
handler); tasks the data plane starts for it (a policy's or a pipeline's) copy it, so every
model they ask is traced as the same request's child. Unsampled requests never set it.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

__all__ = ["CURRENT", "RequestTrace", "traceparent"]

CURRENT: ContextVar[RequestTrace | None] = ContextVar("clipper_request_trace", default=None)


def traceparent(span: Span) -> str:
    """The W3C `traceparent` naming `span` (what a reply carries back)."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class RequestTrace:
    """A sampled request's span and what its children need.

    Invariant: `first_asked_ns` is the moment of the first model asked (0 until then) and
    `answered_ns` the latest moment a model answered; `finish` ends the request's span once.
    `phases`: whether it draws decode and reply children (a prediction; not feedback).
    """

    __slots__ = (
        "answered_ns", "context", "first_asked_ns", "models", "phases", "span", "started_ns",
        "tracer",
    )  # fmt: skip

    def __init__(self, tracer: Tracer, span: Span, started_ns: int, phases: bool = True) -> None:
        self.tracer = tracer
        self.span = span
        self.started_ns = started_ns
        self.phases = phases
        self.context: Context = trace.set_span_in_context(span)
        self.first_asked_ns = 0
        self.answered_ns = 0
        self.models: list[str] = []  # "name:version" of each model asked, in order

    def child(self, name: str, start_ns: int, attributes: dict[str, Any] | None = None) -> Span:
        """A child span of the request, started at `start_ns`."""
        return self.tracer.start_span(
            name, self.context, SpanKind.INTERNAL, attributes, start_time=start_ns
        )

    def asked(self, model: str, now_ns: int) -> None:
        """A model was asked for this request (the end of its decoding and routing)."""
        if not self.first_asked_ns:
            self.first_asked_ns = now_ns
        self.models.append(model)

    def finish(self, error: str | None = None, default: bool | None = None) -> None:
        """End the request: its `decode` child (the request's start to the first model
        asked), its `reply` child (the last answer to now) and its own span."""
        now_ns = time.time_ns()
        if self.phases:
            decoded_ns = self.first_asked_ns or now_ns
            self.child("clipper.decode", self.started_ns).end(decoded_ns)
            self.child("clipper.reply", max(self.answered_ns, decoded_ns)).end(now_ns)
        span = self.span
        if len(self.models) == 1 or len(set(self.models)) == 1:
            name, _, version = self.models[0].rpartition(":")
            span.set_attribute("clipper.model", name)
            span.set_attribute("clipper.version", version)
        if self.models:
            span.set_attribute("clipper.models", sorted(set(self.models)))
        if default is not None:
            span.set_attribute("clipper.default", default)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(now_ns)
