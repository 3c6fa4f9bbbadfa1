"""The query path's plain-number metrics export what prometheus_client's own would."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from clipper.metrics.families import CounterFamily, HistogramFamily, MetricFamilies

BUCKETS = (0.001, 0.01, 0.1, 1.0)
OBSERVED = (0.0005, 0.001, 0.002, 0.5, 1.0, 7.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    """Sorted lines, with the `_created` timestamps masked."""
    text = generate_latest(registry).decode()
    return sorted(re.sub(r"(_created(\{.*\})?) .*", r"\1 X", line) for line in text.splitlines())


def test_counters_and_histograms_render_as_prometheus_clients_do() -> None:
    reference = CollectorRegistry()
    counter = Counter("requests", "Requests.", ["app"], registry=reference)
    histogram = Histogram("latency_seconds", "Latency.", ["app"], buckets=BUCKETS,
                          registry=reference)  # fmt: skip
    ours = CollectorRegistry()
    fast_counter = CounterFamily("requests", "Requests.", ["app"])
    fast_histogram = HistogramFamily("latency_seconds", "Latency.", ["app"], BUCKETS)
    ours.register(MetricFamilies([fast_counter, fast_histogram]))
    for app in ("a", "b"):
        counter.labels(app).inc(3)
        fast_counter.labels(app).inc(3)
        for value in OBSERVED:
            histogram.labels(app).observe(value)
            fast_histogram.labels(app).observe(value)
    assert exposition(ours) == exposition(reference)


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    family = HistogramFamily("h", "H.", [], (1.0, 2.0))
    cell = family.labels()
    for value in (1.0, 1.5, 2.0, 9.0):
        cell.observe(value)
    assert cell.counts == [1, 2, 1]
    assert cell.sum == 13.5


def test_observing_each_of_a_batch_counts_as_one_at_a_time() -> None:
    family = HistogramFamily("h", "H.", ["x"], (1.0, 2.0))
    one, each = family.labels("one"), family.labels("each")
    values = [0.5, 1.0, 1.5, 2.0, 9.0]
    for value in values:
        one.observe(value)

    each.observe_each(values)

    assert (each.counts, each.sum) == (one.counts, one.sum)


def test_an_unused_family_is_described_without_samples() -> None:
    registry = CollectorRegistry()
    registry.register(MetricFamilies([CounterFamily("idle", "Never counted.", ["app"])]))
    text = generate_latest(registry).decode()
    assert "# TYPE idle_total counter" in text
    assert "idle_total{" not in text
