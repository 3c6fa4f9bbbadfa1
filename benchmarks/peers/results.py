"""What a benchmark run found, as plain values that round-trip through JSON."""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.peers.load import LoadRun

__all__ = ["CaseResult", "Ceiling", "Report", "ServedResult", "load_report", "save_report"]


@dataclass
class CaseResult:
    """One system serving one workload at one concurrency: each run, and its default answers."""

    concurrency: int
    runs: list[LoadRun] = field(default_factory=list)
    defaults: list[int] = field(default_factory=list)
    """Answers given by default rather than by the model, per run (Clipper only)."""
    invalid_samples: int = 0
    """Sampled answers (before and after the runs) that were not the model's correct output."""

    def model_answers_per_s(self) -> list[float]:
        """Per run: 2xx answers that came from the model, per second."""
        defaults = self.defaults or [0] * len(self.runs)
        return [
            (run.requests - run.non_2xx - default) / run.duration_s if run.duration_s else 0.0
            for run, default in zip(self.runs, defaults, strict=True)
        ]

    @property
    def throughput(self) -> float:
        """Median over runs of model answers per second."""
        return statistics.median(self.model_answers_per_s()) if self.runs else 0.0

    @property
    def p50_ms(self) -> float:
        """Median over runs of the median latency."""
        return statistics.median(run.p50_ms for run in self.runs) if self.runs else float("nan")

    @property
    def p99_ms(self) -> float:
        """Median over runs of the 99th-percentile latency."""
        return statistics.median(run.p99_ms for run in self.runs) if self.runs else float("nan")

    @property
    def errors(self) -> int:
        """Non-2xx answers and socket errors over all runs."""
        return sum(run.non_2xx + run.socket_errors for run in self.runs)

    @property
    def valid(self) -> bool:
        """No errors, no default answers and every sampled answer correct."""
        return self.errors == 0 and not any(self.defaults) and self.invalid_samples == 0


@dataclass(frozen=True)
class Ceiling:
    """The bare model's in-process batched throughput: no HTTP, no serialisation."""

    batch_size: int
    """The batch size that answered the most items per second."""
    items_per_s: float
    per_batch_size: list[list[float]] = field(default_factory=list)
    """[batch size, items per second] for each size tried."""


@dataclass
class ServedResult:
    """One system serving one workload: start-up, memory and the load cases."""

    system: str
    workload: str
    startup_s: float | None = None
    pss_mb: float | None = None
    notes: dict[str, float] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None
    ceiling: Ceiling | None = None
    """Set instead of `cases` where the system measures the model in-process (bare)."""

    def case(self, concurrency: int) -> CaseResult | None:
        """The case at `concurrency`, if it ran."""
        return next((case for case in self.cases if case.concurrency == concurrency), None)


@dataclass
class Report:
    """A whole benchmark run."""

    duration_s: float
    warmup_s: float
    runs: int
    concurrencies: list[int]
    tool: str
    results: list[ServedResult] = field(default_factory=list)
    batching: dict[str, str] = field(default_factory=dict)
    """How each system's own batching was configured."""

    def find(self, system: str, workload: str) -> ServedResult | None:
        """The result of `system` on `workload`, if it ran."""
        return next(
            (r for r in self.results if r.system == system and r.workload == workload), None
        )


def save_report(report: Report, path: Path) -> None:
    """Write the report as JSON."""
    path.write_text(json.dumps(dataclasses.asdict(report), indent=1))


def load_report(path: Path) -> Report:
    """Read a report written by `save_report`."""
    raw = json.loads(path.read_text())
    results = [_served(item) for item in raw.pop("results")]
    return Report(**raw, results=results)


def _served(raw: dict[str, Any]) -> ServedResult:
    cases = [
        CaseResult(**{**case, "runs": [LoadRun(**run) for run in case["runs"]]})
        for case in raw.pop("cases")
    ]
    ceiling = Ceiling(**raw.pop("ceiling")) if raw.get("ceiling") else None
    raw.pop("ceiling", None)
    return ServedResult(**raw, cases=cases, ceiling=ceiling)
