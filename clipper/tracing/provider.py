"""The OpenTelemetry SDK's side: a BatchSpanProcessor exporting over OTLP from a background
thread, so finishing a span never waits on the network, and the resource every span names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from clipper.tracing.spans import SpanOutput

__all__ = ["EXPORT_BATCH", "EXPORT_TIMEOUT_S", "MAX_QUEUED_SPANS", "open_output"]

EXPORT_TIMEOUT_S = 5.0
"""The longest one export may take (a stalled collector delays only the exporter thread)."""
MAX_QUEUED_SPANS = 16384
"""Finished spans the processor holds before it drops new ones (the SDK's default, 2048, is
under a second of 100% sampling: about 6 spans a query)."""
EXPORT_BATCH = 1024
"""Spans per export: the exporter wakes when this many wait, or after the export delay."""


def open_output(
    endpoint: str,
    protocol: str,
    service_name: str,
    cluster: str,
    delay_s: float,
    process: Mapping[str, str | int] | None = None,
) -> SpanOutput:
    """Where the spans go: `endpoint`, through the SDK's batch processor and OTLP exporter.
    The query surfaces decide which requests are traced (clipper.tracing.session) before any
    span exists, so nothing here samples. `process` adds resource attributes (which query
    frontend, its pid)."""
    resource = Resource.create(
        {"service.name": service_name, "clipper.cluster": cluster, **(process or {})}
    )
    processor = BatchSpanProcessor(
        _exporter(endpoint, protocol),
        max_queue_size=MAX_QUEUED_SPANS,
        schedule_delay_millis=delay_s * 1000,
        max_export_batch_size=EXPORT_BATCH,
    )
    return SpanOutput(processor, resource)


def _exporter(endpoint: str, protocol: str) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter as GrpcExporter,
        )

        exporter: Any = GrpcExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)
        return exporter  # type: ignore[no-any-return]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=EXPORT_TIMEOUT_S)


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (kept when it names the path)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"
