"""The report as a PNG: throughput, latency, start-up and memory per system (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.peers.report import WORKLOAD_LABELS
from benchmarks.peers.results import Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["write_chart"]


def _grouped_bars(axis: Axes, report: Report, values: dict[str, list[float]], title: str,
                  unit: str, log: bool = False) -> None:  # fmt: skip
    """One group of bars per workload, one bar per system."""
    systems = list(values)
    workloads = [w for w in WORKLOAD_LABELS if any(report.find(s, w) for s in systems)]
    width = 0.8 / max(len(systems), 1)
    for index, system in enumerate(systems):
        positions = [w + index * width for w in range(len(workloads))]
        axis.bar(positions, values[system], width, label=system)
    axis.set_xticks([w + 0.4 - width / 2 for w in range(len(workloads))])
    # One line per part of the label (`CNN 3x64x64` / `own batching`): five groups fit.
    labels = [WORKLOAD_LABELS[w].replace(", ", ",\n") for w in workloads]
    axis.set_xticklabels(labels, fontsize=8)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(unit)
    if log and any(value > 0 for row in values.values() for value in row):
        axis.set_yscale("log")


def _series(report: Report, metric: str, concurrency: int | None) -> dict[str, list[float]]:
    """Per system, the metric per workload (0 where missing or failed)."""
    systems = list(dict.fromkeys(r.system for r in report.results))
    workloads = [w for w in WORKLOAD_LABELS if any(report.find(s, w) for s in systems)]
    series: dict[str, list[float]] = {}
    for system in systems:
        row = []
        for workload in workloads:
            result = report.find(system, workload)
            value: float | None = None
            if result is not None and result.ceiling is not None:
                ceiling = result.ceiling.items_per_s
                value = ceiling if metric == "throughput" and concurrency else None
            elif result is not None and concurrency is None:
                value = result.startup_s if metric == "startup" else result.pss_mb
            elif result is not None and (case := result.case(concurrency or 0)) is not None:
                value = getattr(case, metric)
            row.append(0.0 if value is None or math.isnan(value) else value)
        series[system] = row
    return series


def write_chart(report: Report, path: Path) -> None:
    """Write a 2x2 chart of the report to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    high = max(report.concurrencies)
    low = min(report.concurrencies)
    figure, axes = plt.subplots(2, 2, figsize=(13, 8))
    _grouped_bars(axes[0][0], report, _series(report, "throughput", high),
                  f"throughput at concurrency {high}", "req/s", log=True)  # fmt: skip
    _grouped_bars(axes[0][1], report, _series(report, "p50_ms", low),
                  f"p50 latency at concurrency {low}", "ms", log=True)  # fmt: skip
    _grouped_bars(axes[1][0], report, _series(report, "startup", None),
                  "start-up to first answer", "s", log=True)  # fmt: skip
    _grouped_bars(axes[1][1], report, _series(report, "pss", None),
                  "memory (PSS of the process tree)", "MB")  # fmt: skip
    # One legend for all four, in a band of its own under the title, clear of every bar.
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9,
                  bbox_to_anchor=(0.5, 0.955), frameon=False)  # fmt: skip
    runs = f"{report.runs} x {report.duration_s:g} s runs"
    figure.suptitle(f"Clipper and its peers ({report.tool}, {runs}, medians)")
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    figure.savefig(path, dpi=100)
    plt.close(figure)
