"""Prometheus metrics of one server, in their own registry (importing changes nothing)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)


class ServerMetrics:
    """The query path's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "clipper_app_requests", "Predict requests per app.", ["app"], registry=self.registry
        )
        self.latency = Histogram(
            "clipper_app_request_latency_seconds",
            "End-to-end latency of predict requests per app.",
            ["app"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.defaults = Counter(
            "clipper_app_default_answers",
            "Answers given with the app's default output, by reason.",
            ["app", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, float]:
        """A flat dict of every sample, for `inspect_instance()`."""
        samples: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                samples[key] = sample.value
        return samples
