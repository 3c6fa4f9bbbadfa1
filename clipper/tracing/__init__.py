"""OpenTelemetry traces of the query path (issue 25): off unless `otel_endpoint` is set.

Layering: `tracing` sits above `http`, `payloads` and the data plane, below the query
surfaces (frontend/), which take its wrappers; the server composes it. Nothing here imports
OpenTelemetry until `open_tracing` is called with an endpoint: a server without one never
loads it, and its query path pays nothing (the wrappers are not installed at all).

    session.py       QueryTracing: sampling, the surfaces' wrappers, the exporter's life
    requests.py      RequestTrace: one sampled request's span and its decode/reply children
    computations.py  the traced computation table and batch hook: model, queue, batch spans
    spans.py         SpanDraft, SpanOutput: spans as plain drafts, handed to the SDK when ended
    provider.py      the BatchSpanProcessor and OTLP exporter (imports otel)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clipper.core.config import Settings
    from clipper.dataplane.dataplane import DataPlane
    from clipper.tracing.session import QueryTracing

__all__ = ["DEFAULT_SAMPLE_RATIO", "open_tracing"]

DEFAULT_SAMPLE_RATIO = 0.01
"""The share of queries traced when an endpoint is set and `otel_sample_ratio` is not."""


def open_tracing(
    settings: Settings, dataplane: DataPlane, process: Mapping[str, str | int] | None = None
) -> QueryTracing | None:
    """The server's tracing, exporting to `settings.otel_endpoint` (its computations traced
    from now on); None, with nothing imported, when no endpoint is set. `process`: resource
    attributes naming this process among several (a query frontend's index and pid)."""
    if not settings.otel_endpoint:
        return None
    from clipper.tracing.provider import open_output
    from clipper.tracing.session import QueryTracing

    output = open_output(
        settings.otel_endpoint,
        settings.otel_protocol,
        settings.otel_service_name,
        settings.cluster_name,
        settings.otel_export_delay_s,
        process or {},
    )
    ratio = settings.otel_sample_ratio
    return QueryTracing(output, DEFAULT_SAMPLE_RATIO if ratio is None else ratio, dataplane)
