"""Prometheus metrics of one server, in their own registry (importing changes nothing)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ModelMetrics", "ServerMetrics"]

_LATENCY_BUCKETS_S = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ModelMetrics:
    """The metrics of one model version, with labels bound once (cheap to update)."""

    def __init__(self, server: ServerMetrics, model: str, version: str) -> None:
        labels = (model, version)
        self.queue_delay = server.queue_delay.labels(*labels)
        self.batch_size = server.batch_size.labels(*labels)
        self.batch_latency = server.batch_latency.labels(*labels)
        self.cache_hits = server.cache_hits.labels(*labels)
        self.cache_misses = server.cache_misses.labels(*labels)
        self.dropped_expired = server.dropped_expired.labels(*labels)
        self.replicas_ready = server.replicas_ready.labels(*labels)
        self._server = server
        self._labels = labels

    def replica_batches(self, replica: int) -> Counter:
        """Batches served by one replica."""
        return self._server.replica_batches.labels(*self._labels, str(replica))

    def replica_errors(self, replica: int) -> Counter:
        """Failed batches of one replica."""
        return self._server.replica_errors.labels(*self._labels, str(replica))


class ServerMetrics:
    """Every metric the server exports at `/metrics`."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        model = ["model", "version"]
        self.requests = Counter(
            "clipper_app_requests", "Predict requests per app.", ["app"], registry=registry
        )
        self.latency = Histogram(
            "clipper_app_request_latency_seconds",
            "End-to-end latency of predict requests per app.",
            ["app"], buckets=_LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.defaults = Counter(
            "clipper_app_default_answers",
            "Answers given with the app's default output, by reason.",
            ["app", "reason"], registry=registry,
        )  # fmt: skip
        self.queue_delay = Histogram(
            "clipper_model_queue_delay_seconds", "Time inputs wait in the batch queue.",
            model, buckets=_LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "clipper_model_batch_size", "Inputs per batch sent to a replica.",
            model, buckets=_BATCH_SIZE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batch_latency = Histogram(
            "clipper_model_batch_latency_seconds", "Round trip of a batch to a replica.",
            model, buckets=_LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.cache_hits = Counter(
            "clipper_model_cache_hits", "Prediction cache hits.", model, registry=registry
        )
        self.cache_misses = Counter(
            "clipper_model_cache_misses", "Prediction cache misses.", model, registry=registry
        )
        self.dropped_expired = Counter(
            "clipper_model_dropped_expired",
            "Queries dropped from the queue because their deadline passed.",
            model, registry=registry,
        )  # fmt: skip
        self.replicas_ready = Gauge(
            "clipper_model_replicas_ready", "Connected replicas.", model, registry=registry
        )
        self.replica_batches = Counter(
            "clipper_replica_batches", "Batches served per replica.",
            [*model, "replica"], registry=registry,
        )  # fmt: skip
        self.replica_errors = Counter(
            "clipper_replica_errors", "Failed batches per replica.",
            [*model, "replica"], registry=registry,
        )  # fmt: skip

    def for_model(self, model: str, version: str) -> ModelMetrics:
        """The bound metrics of one model version."""
        return ModelMetrics(self, model, version)

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
