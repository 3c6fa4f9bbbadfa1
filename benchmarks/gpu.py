"""`python -m benchmarks.gpu`: the CNN of benchmarks/peers/model.py on one GPU, served by
Clipper (one replica holding the whole GPU) against the model in-process at its best batch
size and against Triton (PyTriton) on the same device, at c=1, 32 and 256; then four Clipper
replicas sharing the GPU at `num_gpus` 0.25 each against the one replica.

`--device cpu` runs the same steps without a GPU (the placement then shares out one fake
GPU, `CLIPPER_GPUS=1`, and the model stays on the CPU), so the script is known to work.
Needs torch in this interpreter (and in `--triton-python`'s, with `nvidia-pytriton`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.peers.bare import measure_ceiling
from benchmarks.peers.clipper import Clipper, serve_clipper
from benchmarks.peers.results import CaseResult
from benchmarks.peers.runner import RunSettings, run_case
from benchmarks.peers.system import Instance, System
from benchmarks.peers.triton import Triton, start_triton
from benchmarks.table import markdown_table

__all__ = ["main"]

WORKLOAD = "cnn"
DEFAULT_TRITON_PYTHON = Path("~/.cache/clipper-peers/triton/bin/python")
CLIPPER_GOAL, FRACTION = 0.8, 0.25


@dataclass(frozen=True)
class Row:
    """One served case: a system at one concurrency."""

    label: str
    concurrency: int
    case: CaseResult


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run")
    parser.add_argument("--concurrency", default="1,32,256", help="comma-separated")
    parser.add_argument("--triton-python", type=Path, default=DEFAULT_TRITON_PYTHON,
                        help="an interpreter with nvidia-pytriton and torch")  # fmt: skip
    parser.add_argument("--skip-triton", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the table (.md) and raw .json")
    return parser


@contextmanager
def _serving(start: Callable[[Path], Instance]) -> Iterator[Instance]:
    """A started system in a scratch directory of its own, stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as scratch:
        instance = start(Path(scratch))
        try:
            yield instance
        finally:
            instance.tree.stop()


def _cases(label: str, system: System, instance: Instance, settings: RunSettings) -> list[Row]:
    rows = []
    for concurrency in settings.concurrencies:
        case = run_case(system, WORKLOAD, instance, concurrency, settings)
        rows.append(Row(label, concurrency, case))
    return rows


def _clipper(device: str, replicas: int, share: float) -> Callable[[Path], Instance]:
    """Clipper with `replicas` replicas of the CNN, each asking for `share` of a GPU."""
    env = {"CLIPPER_GPUS": "1"} if device == "cpu" else {}
    model_device = "auto" if device == "cuda" else "cpu"
    resources = {"num_gpus": share}
    return lambda scratch: serve_clipper(Clipper(), WORKLOAD, scratch, model_device, env,
                                         num_replicas=replicas, resources=resources)  # fmt: skip


def _rows_table(rows: list[Row], ceiling_per_s: float, ceiling_batch: int) -> str:
    cells = [["in-process (no server)", "-", f"{ceiling_per_s:,.0f}", "1.00x",
              f"batch {ceiling_batch}", "-", "-"]]  # fmt: skip
    for row in rows:
        case = row.case
        mark = "" if case.valid else " ⚠"
        cells.append([row.label, str(row.concurrency), f"{case.throughput:,.0f}{mark}",
                      f"{case.throughput / ceiling_per_s:.2f}x" if ceiling_per_s else "-",
                      f"{case.p50_ms:.2f}", f"{case.p99_ms:.2f}",
                      str(case.errors + case.invalid_samples)])  # fmt: skip
    header = ["system", "conc.", "req/s", "vs in-process", "p50 ms", "p99 ms", "errors"]
    return markdown_table(header, cells)


def _best(rows: list[Row], label: str) -> float | None:
    rates = [row.case.throughput for row in rows if row.label == label and row.case.valid]
    return max(rates) if rates else None


def _goals(rows: list[Row], ceiling_per_s: float) -> list[str]:
    """The issue's goals, each with what was measured (best valid throughput over c)."""
    clipper, triton = _best(rows, "clipper, 1 replica"), _best(rows, "triton (pytriton)")
    shared = _best(rows, f"clipper, 4 replicas x {FRACTION}")
    lines = []
    if clipper is not None and ceiling_per_s:
        ratio = clipper / ceiling_per_s
        ok = "met" if ratio >= CLIPPER_GOAL else "missed"
        lines.append(f"- Clipper ≥ {CLIPPER_GOAL}x in-process: {ratio:.2f}x ({ok})")
    if clipper is not None and triton is not None:
        ok = "met" if clipper > triton else "missed"
        lines.append(f"- Clipper ahead of Triton: {clipper / triton:.2f}x ({ok})")
    if clipper is not None and shared is not None:
        lines.append(f"- four replicas at {FRACTION} / one whole-GPU replica: "
                     f"{shared / clipper:.2f}x")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as scratch:
        settings = RunSettings(args.duration, args.warmup, 1, concurrencies, Path(scratch),
                               Path(scratch) / "logs")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="gpu-bench-") as bare_dir:
            ceiling = measure_ceiling(WORKLOAD, Path(bare_dir), Path(sys.executable),
                                      args.duration, args.device)  # fmt: skip
        print(f"[gpu] in-process: {ceiling.items_per_s:,.0f}/s at batch {ceiling.batch_size}",
              flush=True)  # fmt: skip
        rows: list[Row] = []
        with _serving(_clipper(args.device, 1, 1)) as instance:
            rows += _cases("clipper, 1 replica", Clipper(), instance, settings)
        if not args.skip_triton:
            python = args.triton_python.expanduser()
            triton = Triton()
            with _serving(lambda d: start_triton(triton, WORKLOAD, d, python, args.device)) as i:
                rows += _cases("triton (pytriton)", triton, i, settings)
        shared = RunSettings(args.duration, args.warmup, 1, concurrencies[1:] or concurrencies,
                             Path(scratch), Path(scratch) / "logs")  # fmt: skip
        with _serving(_clipper(args.device, 4, FRACTION)) as instance:
            rows += _cases(f"clipper, 4 replicas x {FRACTION}", Clipper(), instance, shared)
    table = _rows_table(rows, ceiling.items_per_s, ceiling.batch_size)
    took = time.monotonic() - started
    text = (f"CNN 3x64x64 on {args.device}, {args.duration:g} s per run after a "
            f"{args.warmup:g} s warm-up ({took:.0f} s in all)\n\n{table}\n\n"
            + "\n".join(_goals(rows, ceiling.items_per_s)) + "\n")  # fmt: skip
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        raw: dict[str, Any] = {
            "device": args.device, "ceiling": dataclasses.asdict(ceiling),
            "rows": [[r.label, r.concurrency, r.case.throughput, r.case.p50_ms, r.case.p99_ms,
                      r.case.valid] for r in rows],
        }  # fmt: skip
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
