"""`python -m benchmarks.peers`: install the peers, drive every system, write the report."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from benchmarks.peers.chart import write_chart
from benchmarks.peers.load import tool_name
from benchmarks.peers.report import render_markdown
from benchmarks.peers.results import Report, ServedResult, save_report
from benchmarks.peers.runner import RunSettings, run_system
from benchmarks.peers.system import WORKLOADS
from benchmarks.peers.systems import SYSTEMS

DEFAULT_OUT = Path("benchmarks/peers/results")
README = Path(__file__).parent.parent / "README.md"
README_MARKER = "<!-- peers-table -->"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the runs")
    parser.add_argument("--runs", type=int, default=2, help="runs per concurrency")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the default also updates the README"
    )
    parser.add_argument("--venv-root", type=Path, default=Path("~/.cache/clipper-peers"))
    parser.add_argument("--install-only", action="store_true", help="install, then stop")
    return parser


def _install(names: list[str], venv_root: Path) -> dict[str, str]:
    """Install each system; returns the reason of each that failed."""
    failures = {}
    for name in names:
        system = SYSTEMS[name]()
        if not system.requirements:
            continue  # runs on this interpreter
        venv = system.venv(venv_root)
        print(f"[peers] {name}: environment {venv} (installed if missing)", flush=True)
        try:
            system.install(venv_root)
        except Exception as exc:
            failures[name] = " ".join(str(exc).split())[:100] or type(exc).__name__
            print(f"[peers] {name}: install failed: {failures[name]}", flush=True)
    return failures


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every started system is stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    names = [name for name in args.systems.split(",") if name]
    unknown = set(names) - set(SYSTEMS)
    if unknown:
        print(f"unknown systems: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    venv_root = args.venv_root.expanduser()
    failures = _install(names, venv_root)
    if args.install_only:
        return 1 if failures else 0
    workloads = tuple(w for w in args.workloads.split(",") if w)
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    settings = RunSettings(
        args.duration, args.warmup, args.runs, concurrencies, venv_root, args.out / "logs"
    )
    report = Report(args.duration, args.warmup, args.runs, list(concurrencies), tool_name())
    for name in names:
        system = SYSTEMS[name]()
        report.batching[name] = system.batching
        if name in failures:
            report.results += [
                ServedResult(name, w, error=f"install: {failures[name]}")
                for w in workloads if w in system.workloads
            ]  # fmt: skip
            continue
        report.results += run_system(system, workloads, settings)
    _write(report, args.out)
    return 0


def _write(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    (out / "peers.md").write_text(markdown)
    save_report(report, out / "peers.json")
    write_chart(report, out / "peers.png")
    print("\n" + markdown)
    print(f"[peers] wrote {out / 'peers.md'}, {out / 'peers.png'} and {out / 'peers.json'}")
    if out.resolve() == DEFAULT_OUT.resolve() and README.exists():
        _update_readme(markdown)


def _update_readme(markdown: str) -> None:
    """Replace what follows the marker in benchmarks/README.md with the new report."""
    text = README.read_text()
    if README_MARKER not in text:
        return
    head = text.split(README_MARKER)[0]
    chart = "![Clipper and its peers](peers/results/peers.png)"
    README.write_text(f"{head}{README_MARKER}\n\n{chart}\n\n{_demote(markdown)}")
    print(f"[peers] updated {README}")


def _demote(markdown: str) -> str:
    """The report's `##` headings one level down, under the README's `###`."""
    return "\n".join("#" * 2 + line if line.startswith("## ") else line
                     for line in markdown.splitlines()) + "\n"  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
