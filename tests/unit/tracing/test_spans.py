"""Span drafts become the SDK's ReadableSpans when they end: the ids, parents, trace state,
links and status the OTLP encoder then sends."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from clipper.tracing.spans import HashedResource, SpanOutput


class Collected(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def output() -> tuple[SpanOutput, Collected]:
    collected = Collected()
    resource = Resource.create({"service.name": "clipper"})
    return SpanOutput(SimpleSpanProcessor(collected), resource), collected


def test_a_tree_keeps_the_callers_trace_and_state() -> None:
    spans, collected = output()
    caller = SpanContext(7, 9, True, TraceFlags(1), TraceState([("vendor", "1")]))
    request = spans.start("POST /{app}/predict", caller, SpanKind.SERVER, 100, {"a": 1})
    model = spans.start("model m:1", request.context, SpanKind.INTERNAL, 110)
    spans.emit("clipper.queue_wait", model.context, 120, 115)  # ends no earlier than it starts
    batch = spans.start("batch m:1", model.context, SpanKind.INTERNAL, 130, None,
                        [Link(model.context)])  # fmt: skip
    batch.set_status(Status(StatusCode.ERROR, "the model raised"))
    for draft in (batch, model):
        spans.end(draft, 150)
    request.set_attribute("clipper.default", False)
    spans.end(request, 160)

    by_name = {span.name: span for span in collected.spans}
    assert len(by_name) == 4
    assert {span.context.trace_id for span in collected.spans} == {7}
    assert {span.context.trace_state.to_header() for span in collected.spans} == {"vendor=1"}
    assert len({span.context.span_id for span in collected.spans}) == 4
    assert by_name["POST /{app}/predict"].parent == caller
    assert by_name["model m:1"].parent == request.context
    waited = by_name["clipper.queue_wait"]
    assert (waited.parent, waited.start_time, waited.end_time) == (model.context, 120, 120)
    assert by_name["batch m:1"].links[0].context == model.context
    assert by_name["batch m:1"].status.status_code is StatusCode.ERROR
    assert dict(by_name["POST /{app}/predict"].attributes or {}) == {
        "a": 1, "clipper.default": False,
    }  # fmt: skip
    encoded = encode_spans(collected.spans)
    [resource_spans] = encoded.resource_spans
    assert len(resource_spans.scope_spans[0].spans) == 4


def test_a_root_starts_a_new_trace() -> None:
    spans, _ = output()
    first = spans.start("a", None, SpanKind.SERVER, 0)
    second = spans.start("b", None, SpanKind.SERVER, 0)
    assert first.parent is None
    assert first.context.trace_id != second.context.trace_id
    assert first.context.trace_flags.sampled


def test_the_resource_hash_is_made_once_and_equals_the_sdks() -> None:
    resource = Resource.create({"service.name": "clipper", "clipper.cluster": "c"})
    hashed = HashedResource(resource)
    assert hashed == resource
    assert hash(hashed) == hash(resource)
