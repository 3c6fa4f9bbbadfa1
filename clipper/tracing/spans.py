"""Spans kept as plain drafts while they run and handed, finished, to the SDK's processor.

The SDK's `Tracer.start_span` builds a live `Span` (its own lock, locked attribute, event and
link lists, the sampler's result, the processors' `on_start`): about 65 us of the event
loop's time per span on a loaded 2-core VM, and a traced query draws seven. Nothing here
needs a live span: every span's parent, start and attributes are known when it starts, and
the rest when it ends. So a span is a `SpanDraft` (its ids, parent, name, kind, start,
attributes, links and status: a slotted object, no lock) until `SpanOutput.end` turns it into
the SDK's `ReadableSpan` (what `Span.end` hands on) and gives it to the BatchSpanProcessor,
whose background thread exports it with the SDK's OTLP exporter: about a fifth of the cost.

The sampling is decided before a draft exists (clipper.tracing.session), so there is no
sampler; the span ids are drawn as the SDK's RandomIdGenerator draws them. Invariant: a
draft is ended once (`SpanOutput.end`); attributes are set before that.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, TraceFlags

__all__ = ["HashedResource", "SpanDraft", "SpanOutput", "new_span_id", "new_trace_id"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status()


def new_trace_id() -> int:
    """A random, valid (non-zero) trace id."""
    trace_id = random.getrandbits(128)
    while not trace_id:
        trace_id = random.getrandbits(128)
    return trace_id


def new_span_id() -> int:
    """A random, valid (non-zero) span id."""
    span_id = random.getrandbits(64)
    while not span_id:
        span_id = random.getrandbits(64)
    return span_id


class SpanDraft:
    """A span being drawn: `context` names it (and is what its children and links name)."""

    __slots__ = ("attributes", "context", "kind", "links", "name", "parent", "start_ns", "status")

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        start_ns: int,
        attributes: dict[str, Any],
        links: Sequence[Link] = (),
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_ns = start_ns
        self.attributes = attributes
        self.links = links
        self.status = _UNSET

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (a str, bool, int, float or a list of one of them)."""
        self.attributes[key] = value

    def set_status(self, status: Status) -> None:
        """The span's status (an error's description)."""
        self.status = status


class HashedResource(Resource):
    """The SDK's (immutable) Resource with its hash made once: the OTLP encoder groups the
    spans of an export by resource, hashing each span's, and the SDK's `__hash__` writes the
    attributes as JSON each time (an eighth of the encoding)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class SpanOutput:
    """Where the drafts go once ended: one span processor, with the resource and the
    instrumentation scope every span carries."""

    def __init__(self, processor: SpanProcessor, resource: Resource) -> None:
        self.processor = processor
        self.resource = HashedResource(resource)
        self.scope = InstrumentationScope("clipper")

    def start(
        self,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        start_ns: int,
        attributes: dict[str, Any] | None = None,
        links: Sequence[Link] = (),
    ) -> SpanDraft:
        """A draft child of `parent` (None: the root of a new trace)."""
        if parent is None:
            context = SpanContext(new_trace_id(), new_span_id(), False, _SAMPLED)
        else:
            context = SpanContext(
                parent.trace_id, new_span_id(), False, _SAMPLED, parent.trace_state
            )
        return SpanDraft(name, context, parent, kind, start_ns, attributes or {}, links)

    def end(self, draft: SpanDraft, end_ns: int) -> None:
        """Finish `draft` at `end_ns` and hand it to the processor (exported behind)."""
        span = ReadableSpan(
            name=draft.name,
            context=draft.context,
            parent=draft.parent,
            resource=self.resource,
            attributes=draft.attributes,
            links=draft.links,
            kind=draft.kind,
            status=draft.status,
            start_time=draft.start_ns,
            end_time=max(end_ns, draft.start_ns),
            instrumentation_scope=self.scope,
        )
        self.processor.on_end(span)

    def emit(
        self,
        name: str,
        parent: SpanContext,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """A span whose start and end are both known now (decode, reply, queue wait)."""
        self.end(self.start(name, parent, SpanKind.INTERNAL, start_ns, attributes), end_ns)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter's thread."""
        self.processor.shutdown()
