"""Running one system through its workloads: start, check, warm up, measure, stop."""

from __future__ import annotations

import contextlib
import http.client
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers.load import drive
from benchmarks.peers.results import CaseResult, ServedResult
from benchmarks.peers.system import Instance, System, post

__all__ = ["RunSettings", "run_case", "run_system"]

_SAMPLES = 5
_MIN_CEILING_S = 4.0


@dataclass(frozen=True)
class RunSettings:
    """How long and how hard to drive each system."""

    duration_s: float
    warmup_s: float
    runs: int
    concurrencies: tuple[int, ...]
    venv_root: Path
    log_dir: Path
    """Where each system's log is kept (the end of it) after its run."""


def run_system(
    system: System, workloads: tuple[str, ...], settings: RunSettings
) -> list[ServedResult]:
    """Serve each of `workloads` that `system` supports, one at a time, each from a fresh
    start; a failure becomes that result's `error` instead of an exception."""
    return [
        _run_workload(system, workload, settings)
        for workload in workloads
        if workload in system.workloads
    ]


def _run_workload(system: System, workload: str, settings: RunSettings) -> ServedResult:
    result = ServedResult(system.name, workload)
    print(f"[peers] {system.name} / {workload}: starting", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"peers-{system.name}-") as scratch:
        instance: Instance | None = None
        try:
            if workload in system.in_process:
                seconds = max(settings.duration_s * settings.runs, _MIN_CEILING_S)
                python = system.python(settings.venv_root)
                result.ceiling = system.ceiling(workload, Path(scratch), python, seconds)
                print(f"[peers] {system.name} / {workload}: in-process "
                      f"{result.ceiling.items_per_s:,.0f} items/s at batch "
                      f"{result.ceiling.batch_size}", flush=True)  # fmt: skip
                return result
            instance = system.start(workload, Path(scratch), system.python(settings.venv_root))
            result.startup_s, result.notes = instance.startup_s, instance.notes
            for concurrency in settings.concurrencies:
                result.cases.append(run_case(system, workload, instance, concurrency, settings))
            result.pss_mb = instance.tree.pss_bytes() / 2**20
        except Exception as exc:
            result.error = _reason(exc)
            print(f"[peers] {system.name} / {workload}: failed: {result.error}", flush=True)
        finally:
            if instance is not None:
                instance.tree.stop()
            _keep_log(
                Path(scratch) / "server.log", settings.log_dir / f"{system.name}-{workload}.log"
            )
    return result


def _keep_log(source: Path, target: Path, limit_bytes: int = 256 * 1024) -> None:
    """Copy the end of a log out of the scratch directory before it is removed."""
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as log:
            log.seek(max(log.seek(0, 2) - limit_bytes, 0))
            target.write_bytes(log.read())


def run_case(
    system: System, workload: str, instance: Instance, concurrency: int, settings: RunSettings
) -> CaseResult:
    case = CaseResult(concurrency)
    case.invalid_samples += _invalid_samples(system, workload, instance)
    if settings.warmup_s > 0:
        drive(instance.request, concurrency, settings.warmup_s)
    for _ in range(settings.runs):
        before = instance.count_defaults() if instance.count_defaults else 0
        run = drive(instance.request, concurrency, settings.duration_s)
        case.runs.append(run)
        if instance.count_defaults:
            case.defaults.append(instance.count_defaults() - before)
        print(
            f"[peers] {system.name} / {workload} c={concurrency}: {run.ok_per_s:,.0f} req/s, "
            f"p50 {run.p50_ms:.3f} ms, p99 {run.p99_ms:.3f} ms, "
            f"errors {run.non_2xx + run.socket_errors}",
            flush=True,
        )
    case.invalid_samples += _invalid_samples(system, workload, instance)
    return case


def _invalid_samples(system: System, workload: str, instance: Instance) -> int:
    """How many of a few sequential requests were not answered with the correct output."""
    invalid = 0
    for _ in range(_SAMPLES):
        status, body = 0, b""
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = post(instance.request)
        invalid += not system.valid(workload, status, body)
    return invalid


def _reason(exc: BaseException) -> str:
    """A one-line reason for the table."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:100]
