"""The report's tables, ratios against Clipper and the issue's targets: pure functions."""

from __future__ import annotations

import math
from collections.abc import Callable

from benchmarks.peers.results import CaseResult, Ceiling, Report, ServedResult
from benchmarks.table import markdown_table

__all__ = ["format_ratio", "render_markdown", "startup_rows", "targets", "throughput_rows"]

BASE = "clipper"
NOT_PEERS = {BASE, "bare"}
WORKLOAD_LABELS = {
    "noop": "no-op (10 floats)",
    "sklearn": "sklearn, batching off",
    "sklearn-batch": "sklearn, own batching",
    "cnn": "CNN 3x64x64, own batching",
    "text": "TF-IDF text, own batching",
}
BATCHED = ("sklearn-batch", "cnn", "text")
CNN_CEILING_FACTOR = 0.8


def format_ratio(value: float | None, base: float | None) -> str:
    """`value / base` as `1.23x`; `-` where either is missing or the base is zero."""
    if value is None or base is None or not base or math.isnan(value) or math.isnan(base):
        return "-"
    return f"{value / base:.2f}x"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _case_cells(case: CaseResult, base: CaseResult | None) -> list[str]:
    runs = " / ".join(f"{rate:,.0f}" for rate in case.model_answers_per_s())
    rate = f"{case.throughput:,.0f}" + ("" if case.valid else " ⚠")
    defaults = str(sum(case.defaults)) if case.defaults else "-"
    return [
        rate, format_ratio(case.throughput, base.throughput if base else None),
        _ms(case.p50_ms), _ms(case.p99_ms), runs,
        str(case.errors + case.invalid_samples), defaults,
    ]  # fmt: skip


def _systems(report: Report) -> list[str]:
    return list(dict.fromkeys(result.system for result in report.results))


def _workloads(report: Report) -> list[str]:
    order = list(WORKLOAD_LABELS)
    found = {result.workload for result in report.results}
    return [w for w in order if w in found] + sorted(found - set(order))


def throughput_rows(report: Report) -> list[list[str]]:
    """Rows of the throughput table: one per workload, concurrency and system."""
    rows = []
    for workload in _workloads(report):
        base = report.find(BASE, workload)
        label = WORKLOAD_LABELS.get(workload, workload)
        for concurrency in report.concurrencies:
            for system in _systems(report):
                result = report.find(system, workload)
                if result is not None and result.ceiling is not None:
                    rows.append(
                        _ceiling_cells(
                            result.ceiling,
                            label,
                            concurrency,
                            base.case(concurrency) if base else None,
                        )
                    )
                    continue
                case = result.case(concurrency) if result else None
                if result is None or (case is None and concurrency != report.concurrencies[0]):
                    continue
                if case is None:  # failed before this concurrency: one row says why
                    rows.append([label, "-", system, f"failed: {result.error}", *["-"] * 6])
                    continue
                base_case = base.case(concurrency) if base else None
                rows.append([label, str(concurrency), system, *_case_cells(case, base_case)])
    return rows


def _ceiling_cells(ceiling: Ceiling, label: str, concurrency: int,
                   base: CaseResult | None) -> list[str]:  # fmt: skip
    """A throughput row for the model's in-process batched throughput (the same at every
    concurrency: no requests, no HTTP)."""
    rate = ceiling.items_per_s
    batch_ms = 1000 * ceiling.batch_size / rate if rate else float("nan")
    return [label, str(concurrency), "bare", f"{rate:,.0f}",
            format_ratio(rate, base.throughput if base else None), _ms(batch_ms), "-",
            f"in-process, batch {ceiling.batch_size}", "0", "-"]  # fmt: skip


def _startup_cell(result: ServedResult) -> str:
    if result.startup_s is None:
        return f"failed: {result.error}"
    cell = f"{result.startup_s:.2f}"
    if "server_ready_s" in result.notes:
        cell += f" (server {result.notes['server_ready_s']:.2f} + deploy "
        cell += f"{result.notes['deploy_s']:.2f})"
    return cell


def startup_rows(report: Report) -> list[list[str]]:
    """Rows of the start-up and memory table: one per workload and system."""
    rows = []
    for workload in _workloads(report):
        base = report.find(BASE, workload)
        for system in _systems(report):
            result = report.find(system, workload)
            if result is None or result.ceiling is not None:
                continue
            pss = "-" if result.pss_mb is None else f"{result.pss_mb:,.0f}"
            rows.append([
                WORKLOAD_LABELS.get(workload, workload), system, _startup_cell(result),
                format_ratio(result.startup_s, base.startup_s if base else None), pss,
                format_ratio(result.pss_mb, base.pss_mb if base else None),
            ])  # fmt: skip
    return rows


def _throughput(report: Report, system: str, workload: str, concurrency: int) -> float | None:
    result = report.find(system, workload)
    case = result.case(concurrency) if result else None
    return case.throughput if case is not None and case.valid else None


def _best_peer(report: Report, workload: str, concurrency: int) -> tuple[str, float] | None:
    rates = [
        (system, rate)
        for system in _systems(report)
        if system not in NOT_PEERS
        and (rate := _throughput(report, system, workload, concurrency)) is not None
    ]
    return max(rates, key=lambda item: item[1]) if rates else None


Target = tuple[str, str, bool | None]
"""What is targeted, what was measured, and whether it is met (None: not measured)."""


def _check(name: str, value: float | None, passes: Callable[[float], bool], shown: str) -> Target:
    if value is None:
        return (name, "not measured", None)
    return (name, shown, passes(value))


def _peer_ratio_target(report: Report, workload: str, factor: float) -> Target:
    name = f"{WORKLOAD_LABELS[workload]} at c=32: ≥ {factor:g}x the best peer"
    ours, best = _throughput(report, BASE, workload, 32), _best_peer(report, workload, 32)
    if ours is None or best is None:
        return (name, "not measured", None)
    ratio = ours / best[1] if best[1] else math.inf
    return (name, f"{ratio:.2f}x ({best[0]}: {best[1]:,.0f} req/s)", ratio >= factor)


def _ahead_target(report: Report, workload: str) -> Target:
    name = f"{WORKLOAD_LABELS[workload]} at c=32: ahead of every peer"
    ours, best = _throughput(report, BASE, workload, 32), _best_peer(report, workload, 32)
    if ours is None or best is None:
        return (name, "not measured", None)
    ratio = ours / best[1] if best[1] else math.inf
    return (name, f"{ratio:.2f}x ({best[0]}: {best[1]:,.0f} req/s)", ratio > 1)


def _ceiling_target(report: Report, workload: str, factor: float) -> Target:
    name = f"{WORKLOAD_LABELS[workload]} at c=32: ≥ {factor:g}x the bare model in-process"
    ours, bare = _throughput(report, BASE, workload, 32), report.find("bare", workload)
    if ours is None or bare is None or bare.ceiling is None or not bare.ceiling.items_per_s:
        return (name, "not measured", None)
    ratio = ours / bare.ceiling.items_per_s
    shown = f"{ratio:.2f}x ({bare.ceiling.items_per_s:,.0f}/s at batch {bare.ceiling.batch_size})"
    return (name, shown, ratio >= factor)


def targets(report: Report) -> list[Target]:
    """Issues 8's and 27's targets for Clipper: (what, measured, met or None when not
    measured)."""
    noop = report.find(BASE, "noop")
    noop_c1 = noop.case(1) if noop else None
    rate_noop = _throughput(report, BASE, "noop", 32)
    rate_batch = _throughput(report, BASE, "sklearn-batch", 32)
    p50 = noop_c1.p50_ms if noop_c1 and noop_c1.runs else None
    p99 = noop_c1.p99_ms if noop_c1 and noop_c1.runs else None
    ready = noop.notes.get("server_ready_s") if noop else None
    deploy = noop.notes.get("deploy_s") if noop else None
    pss = noop.pss_mb if noop else None
    return [
        _check("no-op at c=32 ≥ 15,000 req/s", rate_noop, lambda v: v >= 15_000,
               f"{rate_noop or 0:,.0f} req/s"),
        _peer_ratio_target(report, "noop", 5),
        _check("sklearn with adaptive batching at c=32 ≥ 10,000 req/s", rate_batch,
               lambda v: v >= 10_000, f"{rate_batch or 0:,.0f} req/s"),
        _peer_ratio_target(report, "sklearn-batch", 1.5),
        _check("no-op at c=1: p50 < 0.4 ms", p50, lambda v: v < 0.4, f"{p50 or 0:.3f} ms"),
        _check("no-op at c=1: p99 < 2 ms", p99, lambda v: v < 2, f"{p99 or 0:.3f} ms"),
        _check("server ready (spawn → /healthz) within 1 s", ready, lambda v: v <= 1,
               f"{ready or 0:.2f} s"),
        _check("closure deployed and answering within 3 s", deploy, lambda v: v <= 3,
               f"{deploy or 0:.2f} s"),
        _check("server + one no-op worker < 150 MB PSS", pss, lambda v: v < 150,
               f"{pss or 0:.0f} MB"),
        *(_ahead_target(report, workload) for workload in ("noop", *BATCHED)),
        _ceiling_target(report, "cnn", CNN_CEILING_FACTOR),
    ]  # fmt: skip


def _mark(met: bool | None) -> str:
    return {True: "✅", False: "❌", None: "-"}[met]


def render_markdown(report: Report) -> str:
    """The whole report as Markdown."""
    setup = (
        f"{report.tool}, {report.runs} run(s) of {report.duration_s:g} s per concurrency after "
        f"a {report.warmup_s:g} s warm-up; figures are medians over runs. req/s counts only "
        "correct model answers (2xx, not a default output); ⚠ marks a case with errors, "
        "default answers or a wrong sampled answer, which earns no credit in the targets. "
        "`vs clipper` is system / clipper. `bare` on the CNN and the text model is the "
        "model alone in-process at its best batch size (items/s; p50 is one batch's time), "
        "the ceiling, the same figure at each concurrency."
    )
    throughput_header = ["workload", "conc.", "system", "req/s", "vs clipper", "p50 ms",
                         "p99 ms", "per run req/s", "errors", "defaults"]  # fmt: skip
    startup_header = ["workload", "system", "start-up s (to first answer)", "vs clipper",
                      "PSS MB (process tree)", "vs clipper"]  # fmt: skip
    batching = [[system, how] for system, how in report.batching.items() if how]
    target_rows = [[_mark(met), name, shown] for name, shown, met in targets(report)]
    return "\n\n".join([
        "## Throughput and latency", setup,
        markdown_table(throughput_header, throughput_rows(report)),
        "## Start-up and memory",
        markdown_table(startup_header, startup_rows(report)),
        "## Each system's own batching (the `own batching` workloads)",
        markdown_table(["system", "configuration"], batching) if batching else "-",
        "## Issues 8's and 27's targets for Clipper",
        markdown_table(["", "target", "measured"], target_rows),
    ]) + "\n"  # fmt: skip
