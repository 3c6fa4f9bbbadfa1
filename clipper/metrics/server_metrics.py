"""Prometheus metrics of one server, in their own registry (importing changes nothing)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clipper.core.gpu_devices import GpuSample
from clipper.metrics.families import CounterCell, CounterFamily, HistogramFamily, MetricFamilies
from clipper.metrics.rollout_metrics import RolloutCollector, RolloutSample

__all__ = ["CONTENT_TYPE_LATEST", "AppMetrics", "ModelMetrics", "PolicySample", "ServerMetrics"]

PolicySample = tuple[str, str, str, float]
"""One number a selection policy holds: (app, model, statistic, value)."""

_LATENCY_BUCKETS_S = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class AppMetrics:
    """The per-request metrics of one app, with labels bound once (cheap to update).
    `slo_s` is the app's latency SLO, kept current by the data plane (`set_slo`)."""

    __slots__ = ("_slo_gauge", "answers", "answers_within_slo", "latency", "requests", "slo_s")

    def __init__(self, server: ServerMetrics, app: str) -> None:
        self.requests = server.requests.labels(app)
        self.latency = server.latency.labels(app)
        self.answers = server.answers.labels(app)
        self.answers_within_slo = server.answers_within_slo.labels(app)
        self._slo_gauge = server.latency_slo.labels(app)
        self.slo_s = math.inf  # until the data plane says: every answer counts as in time

    def observe_request(self, latency_s: float, answers: int, from_model: int) -> None:
        """One answered request: its latency, its `answers`, and of those the `from_model`
        ones (not the default output), counted within the SLO if the request made it. One
        call and plain additions (the cells' own `inc` each cost a call on the hot path)."""
        self.requests.value += 1
        self.latency.observe(latency_s)
        self.answers.value += answers
        if from_model and latency_s <= self.slo_s:
            self.answers_within_slo.value += from_model

    def set_slo(self, slo_s: float) -> None:
        """The app's latency SLO, in seconds."""
        self.slo_s = slo_s
        self._slo_gauge.set(slo_s)


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
        self.latency_slo = server.model_latency_slo.labels(*labels)
        self.max_queued = server.max_queued.labels(*labels)
        self._server = server
        self._labels = labels
        self._replica_batches: dict[int, CounterCell] = {}
        self._refused: dict[tuple[str, str], CounterCell] = {}
        self._refused_by_priority: dict[tuple[int, str], CounterCell] = {}

    def admission_refused(self, app: str, reason: str) -> CounterCell:
        """Queries of `app` refused at once by admission control, for `reason`."""
        counter = self._refused.get((app, reason))
        if counter is None:
            model = f"{self._labels[0]}:{self._labels[1]}"
            counter = self._server.admission_refused.labels(app, model, reason)
            self._refused[app, reason] = counter
        return counter

    def refused_by_priority(self, priority: int, reason: str) -> CounterCell:
        """Queries of `priority` refused at once (or displaced from the queue), for `reason`."""
        counter = self._refused_by_priority.get((priority, reason))
        if counter is None:
            model = f"{self._labels[0]}:{self._labels[1]}"
            family = self._server.admission_refused_by_priority
            counter = family.labels(model, str(priority), reason)
            self._refused_by_priority[priority, reason] = counter
        return counter

    def replica_batches(self, replica: int) -> CounterCell:
        """Batches served by one replica."""
        counter = self._replica_batches.get(replica)
        if counter is None:
            counter = self._server.replica_batches.labels(*self._labels, str(replica))
            self._replica_batches[replica] = counter
        return counter

    def replica_errors(self, replica: int) -> Counter:
        """Failed batches of one replica."""
        return self._server.replica_errors.labels(*self._labels, str(replica))


class ServerMetrics:
    """Every metric the server exports at `/metrics`."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        model = ["model", "version"]
        # Updated per request or batch: plain numbers (clipper.metrics.families).
        self.requests = CounterFamily("clipper_app_requests", "Predict requests per app.", ["app"])
        self.latency = HistogramFamily(
            "clipper_app_request_latency_seconds",
            "End-to-end latency of predict requests per app.",
            ["app"], _LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.answers = CounterFamily(
            "clipper_app_answers", "Queries answered per app (each input of a batch).", ["app"]
        )
        self.answers_within_slo = CounterFamily(
            "clipper_app_answers_within_slo",
            "Queries of an app answered by a model (not the default output) within the app's "
            "latency SLO: the SLO attainment is its rate over clipper_app_answers_total's.",
            ["app"],
        )
        self.latency_slo = Gauge(
            "clipper_app_latency_slo_seconds", "The app's latency SLO.", ["app"], registry=registry
        )
        self.defaults = Counter(
            "clipper_app_default_answers",
            "Answers given with the app's default output, by reason.",
            ["app", "reason"], registry=registry,
        )  # fmt: skip
        self.queue_delay = HistogramFamily(
            "clipper_model_queue_delay_seconds", "Time inputs wait in the batch queue.",
            model, _LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.batch_size = HistogramFamily(
            "clipper_model_batch_size", "Inputs per batch sent to a replica.",
            model, _BATCH_SIZE_BUCKETS,
        )  # fmt: skip
        self.batch_latency = HistogramFamily(
            "clipper_model_batch_latency_seconds", "Round trip of a batch to a replica.",
            model, _LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.cache_hits = CounterFamily("clipper_model_cache_hits", "Prediction cache hits.", model)
        self.cache_misses = CounterFamily(
            "clipper_model_cache_misses", "Prediction cache misses.", model
        )
        self.dropped_expired = Counter(
            "clipper_model_dropped_expired",
            "Queries dropped from the queue because their deadline passed.",
            model, registry=registry,
        )  # fmt: skip
        self.replicas_ready = Gauge(
            "clipper_model_replicas_ready", "Connected replicas.", model, registry=registry
        )
        self.model_latency_slo = Gauge(
            "clipper_model_latency_slo_seconds",
            "The shortest latency SLO of the apps using the version (its batching's target): "
            "divide the mean queue delay by it for the delay against the SLO.",
            model, registry=registry,
        )  # fmt: skip
        self.replica_batches = CounterFamily(
            "clipper_replica_batches", "Batches served per replica.", [*model, "replica"]
        )
        self.admission_refused = CounterFamily(
            "clipper_admission_refused",
            "Queries refused at once by admission control, per app, model version "
            "(name:version) and reason: deadline (it could not be answered in time) or "
            "queue_full (the version's max_queued).",
            ["app", "model", "reason"],
        )
        self.admission_refused_by_priority = CounterFamily(
            "clipper_admission_refused_by_priority",
            "Queries refused at once by admission control, per model version, query "
            "priority and reason: deadline, queue_full, or displaced (queued, then put out "
            "of a full queue by a query of a higher priority).",
            ["model", "priority", "reason"],
        )
        self.max_queued = Gauge(
            "clipper_model_max_queued",
            "The bound of a model version's batch queue (-1: none yet, before its first "
            "batch latency is measured).",
            model, registry=registry,
        )  # fmt: skip
        self.payload_records = CounterFamily(
            "clipper_payload_log_records",
            "Payload records written per log (an app's: app; a model version's: model, "
            "name:version) and sink kind (jsonl, cloudevents, redis).",
            ["app", "model", "sink"],
        )
        self.payload_dropped = CounterFamily(
            "clipper_payload_log_dropped",
            "Payload records dropped per log (app, or model) and reason: buffer_full (the "
            "sink is behind; the query did not wait), sink_error, sink_timeout, or "
            "encode_error.",
            ["app", "model", "reason"],
        )
        registry.register(MetricFamilies([
            self.requests, self.latency, self.answers, self.answers_within_slo, self.queue_delay,
            self.batch_size, self.batch_latency, self.cache_hits, self.cache_misses,
            self.replica_batches, self.admission_refused, self.admission_refused_by_priority,
            self.payload_records,
            self.payload_dropped,
        ]))  # fmt: skip
        self.replica_errors = Counter(
            "clipper_replica_errors", "Failed batches per replica.",
            [*model, "replica"], registry=registry,
        )  # fmt: skip

        self._add_selection_metrics(registry)
        self._add_autoscaler_metrics(registry, model)
        self._apps: dict[str, AppMetrics] = {}

    def _add_selection_metrics(self, registry: CollectorRegistry) -> None:
        """Metrics of apps under a selection policy or a pipeline (issue 5)."""
        self.app_model_queries = Counter(
            "clipper_app_model_queries", "Queries sent to each model version of an app.",
            ["app", "model", "version"], registry=registry,
        )  # fmt: skip
        self.partial_answers = Counter(
            "clipper_app_partial_answers",
            "Ensemble answers built from only the models that finished by the deadline.",
            ["app"], registry=registry,
        )  # fmt: skip
        self.feedback = Counter(
            "clipper_policy_feedback", "Rewards given to each model of an app by feedback.",
            ["app", "model"], registry=registry,
        )  # fmt: skip
        self.rewards = Counter(
            "clipper_policy_rewards",
            "Sum of the rewards given to each model (divide by clipper_policy_feedback_total).",
            ["app", "model"], registry=registry,
        )  # fmt: skip
        self.shadow_answers = Counter(
            "clipper_shadow_answers",
            "Shadow answers by outcome: agree or disagree with the primary, or failed.",
            ["app", "model", "outcome"], registry=registry,
        )  # fmt: skip
        self.shadow_latency = Histogram(
            "clipper_shadow_latency_seconds", "Time from a query's arrival to a shadow's answer.",
            ["app", "model"], buckets=_LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip

    def _add_autoscaler_metrics(self, registry: CollectorRegistry, model: list[str]) -> None:
        """Metrics of autoscaled versions (issue 22), set once per autoscaler interval."""
        self.autoscaler_desired = Gauge(
            "clipper_autoscaler_desired_replicas",
            "Replicas the autoscaler wants for a version (after its bounds and the machine's).",
            model, registry=registry,
        )  # fmt: skip
        self.autoscaler_current = Gauge(
            "clipper_autoscaler_current_replicas",
            "A version's replica target when the autoscaler last looked.",
            model, registry=registry,
        )  # fmt: skip
        self.autoscaler_queue_delay_ratio = Gauge(
            "clipper_autoscaler_queue_delay_ratio",
            "Mean batch-queue delay over the version's SLO, over its upscale window.",
            model, registry=registry,
        )  # fmt: skip

    def forget_autoscaled(self, model: str, version: str) -> None:
        """Drop the autoscaler gauges of a version no longer autoscaled."""
        for gauge in (self.autoscaler_desired, self.autoscaler_current,
                      self.autoscaler_queue_delay_ratio):  # fmt: skip
            with contextlib.suppress(KeyError):
                gauge.remove(model, version)

    def watch_policies(self, samples: Callable[[], Iterable[PolicySample]]) -> None:
        """Export what selection policies hold (weights, posteriors) as the gauge
        `clipper_policy_state{app, model, stat}`, read from `samples` at each scrape."""
        self.registry.register(_PolicyCollector(samples))

    def watch_rollouts(self, samples: Callable[[], Iterable[RolloutSample]]) -> None:
        """Export each running canary rollout (clipper.metrics.rollout_metrics:
        `clipper_rollout_step`, `_share`, `_check_value{check, side}`, ...), read from
        `samples` at each scrape."""
        self.registry.register(RolloutCollector(samples))

    def watch_payload_buffers(
        self, depths: Callable[[], Iterable[tuple[tuple[str, str], int]]]
    ) -> None:
        """Export each payload log's records waiting for their sink as the gauge
        `clipper_payload_log_buffered{app, model}`, read from `depths` at each scrape."""
        self.registry.register(_GaugeCollector(
            "clipper_payload_log_buffered",
            "Payload records of a log (an app's, or a model version's) waiting for its sink "
            "(back-pressure: a full buffer drops new records).",
            ("app", "model"), depths,
        ))  # fmt: skip

    def watch_gpus(self, samples: Callable[[], Iterable[GpuSample]]) -> None:
        """Export the machine's GPUs (none: the families, without samples), read from
        `samples` at each scrape: `clipper_gpu_allocated_fraction{gpu}`,
        `clipper_gpu_replicas{gpu}`, `clipper_gpu_utilization_ratio{gpu}` and
        `clipper_gpu_memory_used_bytes{gpu}` (where NVML measures them), and
        `clipper_replica_gpu_fraction{replica, gpu}` (the share each replica holds)."""
        self.registry.register(_GpuCollector(samples))

    def for_app(self, app: str) -> AppMetrics:
        """The bound per-request metrics of an app (kept for the server's lifetime)."""
        metrics = self._apps.get(app)
        if metrics is None:
            metrics = self._apps[app] = AppMetrics(self, app)
        return metrics

    def for_model(self, model: str, version: str) -> ModelMetrics:
        """The bound metrics of one model version."""
        return ModelMetrics(self, model, version)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, float]:
        """A flat dict of every sample, for `inspect_instance()`; a family with no sample
        yet (no query, app or model so far) appears by its name with 0, so the same
        families are there from the first second."""
        samples: dict[str, float] = {}
        for family in self.registry.collect():
            if not family.samples:
                samples[family.name] = 0.0
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                samples[key] = sample.value
        return samples


class _GaugeCollector:
    """A gauge read at scrape time: nothing is updated on the query path."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...],
        samples: Callable[[], Iterable[tuple[tuple[str, ...], int]]],
    ) -> None:  # fmt: skip
        self._name, self._documentation, self._labels = name, documentation, labels
        self._samples = samples

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for label_values, value in self._samples():
            family.add_metric(list(label_values), value)
        yield family

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self._documentation, labels=list(self._labels))


class _PolicyCollector:
    """Reads policy statistics at scrape time: nothing is updated on the query path."""

    def __init__(self, samples: Callable[[], Iterable[PolicySample]]) -> None:
        self._samples = samples

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for app, model, stat, value in self._samples():
            family.add_metric([app, model, stat], value)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "clipper_policy_state",
            "What each app's selection policy holds per model (weights, posteriors).",
            labels=["app", "model", "stat"],
        )


class _GpuCollector:
    """The GPUs of the machine and who holds them, read at scrape time."""

    def __init__(self, samples: Callable[[], Iterable[GpuSample]]) -> None:
        self._samples = samples

    def describe(self) -> list[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for sample in self._samples():
            gpu = [str(sample.device.index)]
            families["allocated"].add_metric(gpu, sample.allocated)
            families["replicas"].add_metric(gpu, len(sample.holders))
            families["memory_total"].add_metric(gpu, sample.device.memory_bytes)
            if sample.utilization is not None:
                families["utilization"].add_metric(gpu, sample.utilization)
            if sample.memory_used_bytes is not None:
                families["memory_used"].add_metric(gpu, sample.memory_used_bytes)
            for replica, share in sample.holders:
                families["replica"].add_metric([replica, *gpu], share)
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        gpu = ["gpu"]
        return {
            "allocated": GaugeMetricFamily(
                "clipper_gpu_allocated_fraction",
                "Share of a GPU handed out to replicas (0..1; never above 1).",
                labels=gpu,
            ),
            "replicas": GaugeMetricFamily(
                "clipper_gpu_replicas", "Replicas holding a share of a GPU.", labels=gpu
            ),
            "memory_total": GaugeMetricFamily(
                "clipper_gpu_memory_total_bytes", "A GPU's memory (0: unknown).", labels=gpu
            ),
            "utilization": GaugeMetricFamily(
                "clipper_gpu_utilization_ratio",
                "A GPU's utilisation over NVML's last sample period (0..1).",
                labels=gpu,
            ),
            "memory_used": GaugeMetricFamily(
                "clipper_gpu_memory_used_bytes", "A GPU's memory in use (NVML).", labels=gpu
            ),
            "replica": GaugeMetricFamily(
                "clipper_replica_gpu_fraction",
                "The share of a GPU a replica (name:version:replica) holds.",
                labels=["replica", "gpu"],
            ),
        }
