"""Counters and histograms for the query path: plain numbers, exported at scrape time.

`prometheus_client`'s own metrics take a lock on every update and walk the buckets one by
one: about 1 us per histogram observation, several per request. These keep a float per
labelled child (a histogram: a count per bucket, found by bisection) and are updated only
on the event loop's thread; `MetricFamilies` turns them into the same exposition (samples
`_total`/`_created` of a counter; `_bucket`/`_count`/`_sum`/`_created` of a histogram) when
the registry is collected.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["CounterCell", "CounterFamily", "HistogramCell", "HistogramFamily", "MetricFamilies"]

INF = float("inf")
Cell = TypeVar("Cell", "CounterCell", "HistogramCell")


class CounterCell:
    """One labelled counter."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (never negative)."""
        self.value += amount


class HistogramCell:
    """One labelled histogram. Invariant: `counts[i]` holds the observations in
    (bounds[i-1], bounds[i]]; the last bound is +Inf."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_each(self, values: list[float]) -> None:
        """Count each of `values` (one call for a batch's worth)."""
        counts, bounds = self.counts, self.bounds
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        self.sum += sum(values)


class _Family(Generic[Cell]):
    """A metric with labels; `labels(...)` binds a child once, for cheap updates."""

    kind: type[CounterMetricFamily | HistogramMetricFamily]

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Cell] = {}

    def _new_child(self) -> Cell:
        raise NotImplementedError

    def labels(self, *values: str) -> Cell:
        """The child of these label values (made on first use)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new_child()
        return child

    def empty(self) -> CounterMetricFamily | HistogramMetricFamily:
        """The family without samples."""
        return self.kind(self.name, self.documentation, labels=self.labelnames)


class CounterFamily(_Family[CounterCell]):
    """A counter with labels."""

    kind = CounterMetricFamily

    def _new_child(self) -> CounterCell:
        return CounterCell()

    def collect(self) -> Metric:
        """The family as `prometheus_client` exports it."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(values, child.value, created=child.created)
        return family


class HistogramFamily(_Family[HistogramCell]):
    """A histogram with labels and fixed bucket bounds."""

    kind = HistogramMetricFamily

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = tuple(float(bound) for bound in buckets)
        self._bounds = bounds if bounds and bounds[-1] == INF else (*bounds, INF)

    def _new_child(self) -> HistogramCell:
        return HistogramCell(self._bounds)

    def collect(self) -> Metric:
        """The family as `prometheus_client` exports it (cumulative buckets)."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(child.bounds, list(child.counts), strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            family.add_metric(values, buckets, child.sum)
            labels = dict(zip(self.labelnames, values, strict=True))
            family.add_sample(f"{self.name}_created", labels, child.created)
        return family


def _bound_label(bound: float) -> str:
    """A bucket's `le` label as prometheus_client writes it (`0.005`, `16.0`, `+Inf`)."""
    return "+Inf" if bound == INF else repr(bound)


class MetricFamilies:
    """A registry collector for families of this module."""

    def __init__(self, families: Sequence[CounterFamily | HistogramFamily]) -> None:
        self._families = list(families)

    def describe(self) -> list[Metric]:
        """The families, without samples (checked for name clashes at registration)."""
        return [family.empty() for family in self._families]

    def collect(self) -> Iterator[Metric]:
        """Every family with its samples, now."""
        for family in self._families:
            yield family.collect()
