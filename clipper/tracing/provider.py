"""The OpenTelemetry SDK's side: a TracerProvider exporting over OTLP from a background
thread (BatchSpanProcessor), so finishing a span never waits on the network."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

__all__ = ["EXPORT_TIMEOUT_S", "open_provider"]

EXPORT_TIMEOUT_S = 5.0
"""The longest one export may take (a stalled collector delays only the exporter thread)."""


def open_provider(
    endpoint: str, protocol: str, service_name: str, cluster: str, delay_s: float
) -> TracerProvider:
    """A provider whose spans go to `endpoint`. Its sampler keeps every span it is asked
    for: the query surfaces decide (clipper.tracing.session) before any span exists."""
    resource = Resource.create({"service.name": service_name, "clipper.cluster": cluster})
    provider = TracerProvider(sampler=ALWAYS_ON, resource=resource, shutdown_on_exit=False)
    processor = BatchSpanProcessor(
        _exporter(endpoint, protocol), schedule_delay_millis=delay_s * 1000
    )
    provider.add_span_processor(processor)
    return provider


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
