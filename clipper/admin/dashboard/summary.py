"""A compact JSON snapshot of the server's metrics, per app and per model version.

Counters are cumulative since the server started; the dashboard takes two snapshots and
divides their differences by the time between them (queries per second, windowed latency
quantiles from the bucket differences, batch size mean, cache hit and default ratios).
Read at request time from the Prometheus registry: nothing is added to the query path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from clipper.metrics.server_metrics import ServerMetrics

__all__ = [
    "SUMMARY_METRICS",
    "SummarySource",
    "exposition_summary",
    "histogram_quantile",
    "metrics_summary",
]

SummarySource = Callable[[], Awaitable[dict[str, Any]]]
"""Where a server's summary comes from when it is not one registry's (several frontends:
their merged metrics page, `exposition_summary`)."""

Buckets = list[list[float]]
"""Cumulative histogram buckets `[[upper_bound, count], ...]`, the last bound +inf (null
in JSON)."""


Entries = dict[str, dict[str, Any]]
Reader = Callable[[Entries, Entries, str, dict[str, str], float], None]
"""Adds one sample (name, labels, value) to the app or model entries."""


def histogram_quantile(quantile: float, buckets: Sequence[Sequence[float]]) -> float | None:
    """Estimate a quantile from cumulative buckets as Prometheus does: linear within the
    bucket that holds it; the last finite bound when it falls in the +inf bucket; None when
    the histogram is empty."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            fraction = (rank - lower_count) / width if width > 0 else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return lower_bound


def metrics_summary(metrics: ServerMetrics) -> dict[str, Any]:
    """`{"time", "apps": {app: {...}}, "models": {"name:version": {...}}}` (see module doc)."""
    return families_summary(metrics.registry.collect())


def exposition_summary(text: bytes) -> dict[str, Any]:
    """`metrics_summary` of a Prometheus text exposition (several processes' merged)."""
    return families_summary(text_string_to_metric_families(text.decode()))


def families_summary(families: Iterable[Metric]) -> dict[str, Any]:
    """`metrics_summary` of these metric families."""
    apps: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    for family in families:
        reader = _READERS.get(family.name)
        if reader is None:
            continue
        for sample in family.samples:
            reader(apps, models, sample.name, sample.labels, sample.value)
    for app in apps.values():
        _add_quantiles(app, "latency")
    for model in models.values():
        _add_quantiles(model, "batch_latency")
        count = model.get("batch_count", 0.0)
        model["batch_size_mean"] = model.get("batch_inputs", 0.0) / count if count else None
    return {"time": time.time(), "apps": apps, "models": models}


def _add_quantiles(entry: dict[str, Any], prefix: str) -> None:
    buckets = sorted(entry.pop(f"_{prefix}_buckets", []))
    entry[f"{prefix}_buckets"] = [[None if math.isinf(b) else b, c] for b, c in buckets]
    for name, quantile in (("p50", 0.5), ("p99", 0.99)):
        entry[f"{prefix}_{name}_s"] = histogram_quantile(quantile, buckets)


def _app(apps: Entries, labels: dict[str, str]) -> dict[str, Any]:
    return apps.setdefault(labels["app"], {
        "requests": 0.0, "defaults": 0.0, "default_reasons": {}, "partial": 0.0,
        "model_queries": {},
    })  # fmt: skip


def _model(models: Entries, labels: dict[str, str]) -> dict[str, Any]:
    key = f"{labels['model']}:{labels['version']}"
    return models.setdefault(key, {
        "model": labels["model"], "version": labels["version"], "batch_count": 0.0,
        "batch_inputs": 0.0, "cache_hits": 0.0, "cache_misses": 0.0, "dropped_expired": 0.0,
        "replicas_ready": 0.0, "replica_errors": 0.0, "replica_batches": 0.0,
    })  # fmt: skip


def _app_counter(key: str) -> Reader:
    def read(
        apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
    ) -> None:
        if name.endswith("_total"):
            _app(apps, labels)[key] += value

    return read


def _model_counter(key: str, suffix: str = "_total") -> Reader:
    def read(
        apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
    ) -> None:
        if name.endswith(suffix):
            _model(models, labels)[key] += value

    return read


def _read_defaults(
    apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
) -> None:
    if name.endswith("_total"):
        app = _app(apps, labels)
        app["defaults"] += value
        reasons = app["default_reasons"]
        reasons[labels["reason"]] = reasons.get(labels["reason"], 0.0) + value


def _read_app_model(
    apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
) -> None:
    if name.endswith("_total"):
        queries = _app(apps, labels)["model_queries"]
        queries[f"{labels['model']}:{labels['version']}"] = value


def _histogram(of_app: bool, prefix: str, count_key: str = "", sum_key: str = "") -> Reader:
    def read(
        apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
    ) -> None:
        entry = _app(apps, labels) if of_app else _model(models, labels)
        if name.endswith("_bucket") and prefix:
            entry.setdefault(f"_{prefix}_buckets", []).append([float(labels["le"]), value])
        elif name.endswith("_count") and count_key:
            entry[count_key] = value
        elif name.endswith("_sum") and sum_key:
            entry[sum_key] = value

    return read


def _read_replicas_ready(
    apps: Entries, models: Entries, name: str, labels: dict[str, str], value: float
) -> None:
    _model(models, labels)["replicas_ready"] = value


_READERS: dict[str, Reader] = {
    "clipper_app_requests": _app_counter("requests"),
    "clipper_app_partial_answers": _app_counter("partial"),
    "clipper_app_default_answers": _read_defaults,
    "clipper_app_model_queries": _read_app_model,
    "clipper_app_request_latency_seconds": _histogram(True, "latency"),
    "clipper_model_batch_size": _histogram(False, "", "batch_count", "batch_inputs"),
    "clipper_model_batch_latency_seconds": _histogram(False, "batch_latency"),
    "clipper_model_cache_hits": _model_counter("cache_hits"),
    "clipper_model_cache_misses": _model_counter("cache_misses"),
    "clipper_model_dropped_expired": _model_counter("dropped_expired"),
    "clipper_model_replicas_ready": _read_replicas_ready,
    "clipper_replica_errors": _model_counter("replica_errors"),
    "clipper_replica_batches": _model_counter("replica_batches"),
}

SUMMARY_METRICS = tuple(sorted(_READERS))
"""The metric families the summary reads."""
