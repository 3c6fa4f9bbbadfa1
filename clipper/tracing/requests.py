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

from opentelemetry.trace import SpanKind, Status, StatusCode

from clipper.tracing.spans import SpanDraft, SpanOutput

__all__ = ["CURRENT", "RequestTrace", "traceparent"]

CURRENT: ContextVar[RequestTrace | None] = ContextVar("clipper_request_trace", default=None)


def traceparent(span: SpanDraft) -> str:
    """The W3C `traceparent` naming `span` (what a reply carries back)."""
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class RequestTrace:
    """A sampled request's span and what its children need.

    Invariant: `first_asked_ns` is the moment of the first model asked (0 until then) and
    `answered_ns` the latest moment a model answered; `finish` ends the request's span once.
    `phases`: whether it draws decode and reply children (a prediction; not feedback).
    """

    __slots__ = (
        "answered_ns", "first_asked_ns", "models", "output", "phases", "span", "started_ns",
    )  # fmt: skip

    def __init__(
        self, output: SpanOutput, span: SpanDraft, started_ns: int, phases: bool = True
    ) -> None:
        self.output = output
        self.span = span
        self.started_ns = started_ns
        self.phases = phases
        self.first_asked_ns = 0
        self.answered_ns = 0
        self.models: list[str] = []  # "name:version" of each model asked, in order

    def child(self, name: str, start_ns: int, attributes: dict[str, Any]) -> SpanDraft:
        """A child span of the request, started at `start_ns` (ended by `output.end`)."""
        return self.output.start(name, self.span.context, SpanKind.INTERNAL, start_ns, attributes)

    def asked(self, model: str, now_ns: int) -> None:
        """A model was asked for this request (the end of its decoding and routing)."""
        if not self.first_asked_ns:
            self.first_asked_ns = now_ns
        self.models.append(model)

    def finish(self, error: str | None = None, default: bool | None = None) -> None:
        """End the request: its `decode` child (the request's start to the first model
        asked), its `reply` child (the last answer to now) and its own span."""
        now_ns = time.time_ns()
        output, span = self.output, self.span
        if self.phases:
            decoded_ns = self.first_asked_ns or now_ns
            output.emit("clipper.decode", span.context, self.started_ns, decoded_ns)
            output.emit("clipper.reply", span.context, max(self.answered_ns, decoded_ns), now_ns)
        attributes = span.attributes
        models = self.models
        if models:
            if len(models) == 1 or len(set(models)) == 1:
                name, _, version = models[0].rpartition(":")
                attributes["clipper.model"] = name
                attributes["clipper.version"] = version
            attributes["clipper.models"] = sorted(set(models))
        if default is not None:
            attributes["clipper.default"] = default
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        output.end(span, now_ns)
