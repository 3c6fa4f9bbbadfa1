"""One `/metrics` page from the exposition texts of every process of a server.

Counters, histograms and summaries are summed sample by sample (same name, same labels;
a `_created` sample keeps the earliest time); a gauge keeps the largest value, since
the gauges are views of shared state every process sees alike (an SLO, the replicas
connected, a policy's weights, the autoscaler's and GPUs' numbers, held by the control
process alone). A family keeps the help text and place of its first appearance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["merge_expositions"]

_SUMMED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class _Merged:
    """The families of every text, merged; a collector for `generate_latest`."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        self.values: dict[str, dict[_SampleKey, float]] = {}

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            merged = self.families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            values = self.values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                values[key] = _combine(merged.type, sample.name, values.get(key), sample.value)

    def collect(self) -> Iterator[Metric]:
        for name, family in self.families.items():
            out = Metric(family.name, family.documentation, family.type)
            for (sample_name, labels), value in self.values[name].items():
                out.add_sample(sample_name, dict(labels), value)
            yield out


def _combine(kind: str, sample_name: str, old: float | None, new: float) -> float:
    if old is None:
        return new
    if sample_name.endswith("_created"):
        return min(old, new)
    return old + new if kind in _SUMMED else max(old, new)


def merge_expositions(texts: Iterable[bytes | str]) -> bytes:
    """The Prometheus text exposition of `texts` merged (see the module's docstring)."""
    merged = _Merged()
    for text in texts:
        merged.add(text.decode() if isinstance(text, bytes) else text)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(merged)
    return generate_latest(registry)
