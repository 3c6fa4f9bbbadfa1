"""The peers benchmark's report logic: ratios, rows and targets (offline, no servers)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.peers.load import LoadRun, parse_wrk
from benchmarks.peers.rayserve import RayServe, RayServeDefault
from benchmarks.peers.report import format_ratio, render_markdown, targets, throughput_rows
from benchmarks.peers.results import CaseResult, Report, ServedResult, load_report, save_report
from benchmarks.peers.systems import SYSTEMS


def _case(concurrency: int, rate: float, defaults: int = 0) -> CaseResult:
    run = LoadRun(10.0, int(rate * 10), 0, 0, 0.2, 1.0)
    return CaseResult(concurrency, [run], [defaults])


def _report() -> Report:
    clipper = ServedResult("clipper", "noop", 1.5, 120.0, {"server_ready_s": 0.5, "deploy_s": 1},
                           [_case(1, 5_000), _case(32, 20_000)])  # fmt: skip
    ray = ServedResult("rayserve", "noop", 9.0, 600.0, cases=[_case(1, 500), _case(32, 2_000)])
    failed = ServedResult("torchserve", "noop", error="exited during start-up")
    return Report(10.0, 1.0, 1, [1, 32], "wrk", [clipper, ray, failed])


def test_format_ratio() -> None:
    assert format_ratio(50.0, 200.0) == "0.25x"
    assert format_ratio(None, 1.0) == "-"
    assert format_ratio(1.0, 0.0) == "-"


def test_rows_hold_ratios_and_failures() -> None:
    rows = throughput_rows(_report())
    ray_c32 = next(row for row in rows if row[1] == "32" and row[2] == "rayserve")
    assert ray_c32[3:5] == ["2,000", "0.10x"]
    assert any(row[3] == "failed: exited during start-up" for row in rows)


def test_targets_compare_with_the_best_peer() -> None:
    met = {name: ok for name, _, ok in targets(_report())}
    assert met["no-op at c=32 ≥ 15,000 req/s"] is True
    assert met["no-op (10 floats) at c=32: ≥ 5x the best peer"] is True
    assert met["server + one no-op worker < 150 MB PSS"] is True


def test_default_answers_earn_no_credit() -> None:
    case = _case(32, 1_000, defaults=4_000)
    assert case.throughput == 600.0
    assert not case.valid


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    save_report(_report(), tmp_path / "peers.json")
    assert render_markdown(load_report(tmp_path / "peers.json")) == render_markdown(_report())


def test_parse_wrk_counts_errors() -> None:
    text = "  99%    2.50ms\n  1000 requests in 2.00s, 1MB read\n  Non-2xx or 3xx responses: 10\n"
    run = parse_wrk(text, 1.0)
    assert (run.ok_per_s, run.p99_ms, run.non_2xx) == (495.0, 2.5, 10)


def test_ray_serve_at_its_default_limit_shares_the_ray_serve_environment(tmp_path: Path) -> None:
    assert (SYSTEMS["rayserve"], SYSTEMS["rayserve-default"]) == (RayServe, RayServeDefault)
    tuned, default = RayServe(), RayServeDefault()
    assert default.python(tmp_path) == tuned.python(tmp_path) == tmp_path / "rayserve/bin/python"
    assert (tuned.max_ongoing, default.max_ongoing) == (64, None)
    assert SYSTEMS["mlserver"]().python(tmp_path) == tmp_path / "mlserver/bin/python"
