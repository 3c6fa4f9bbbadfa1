"""benchmarks/autoscale.py's Ray Serve side, offline: its autoscaling config and the replica
counts read back from its service's log (no Ray Serve started)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.autoscale import AUTOSCALING
from benchmarks.autoscale_rayserve import RayServeAutoscaled, ServeRun, serve_autoscaling


def test_ray_serve_gets_clippers_bounds_and_windows() -> None:
    config = serve_autoscaling(AUTOSCALING, 4.0)
    assert (config["min_replicas"], config["max_replicas"]) == (1, 4)
    assert config["target_ongoing_requests"] == 4.0
    assert config["look_back_period_s"] == AUTOSCALING["upscale_window_s"]
    assert config["downscale_delay_s"] == AUTOSCALING["downscale_delay_s"]
    assert "downscale_to_zero_delay_s" not in config
    to_zero = serve_autoscaling({**AUTOSCALING, "min_replicas": 0}, 2.0)
    assert to_zero["downscale_to_zero_delay_s"] == AUTOSCALING["scale_to_zero_after_s"]


def test_replica_counts_are_read_within_the_run(tmp_path: Path) -> None:
    log = tmp_path / "replicas.log"
    log.write_text("99.5 1\n100.0 1\n101.5 2\n103.0 4\n")
    assert ServeRun(1, log).replicas(100.0, 102.0) == [(0.0, 1), (1.5, 2)]
    assert ServeRun(1, tmp_path / "missing.log").replicas(0.0, 1.0) == []


def test_the_probe_is_valid_only_with_the_models_answer() -> None:
    system = RayServeAutoscaled({}, Path("unused"))
    assert system.valid("autoscale", 200, b'{"output": 3.0}')
    assert not system.valid("autoscale", 200, b'{"output": 2.0}')
    assert not system.valid("autoscale", 503, b'{"output": 3.0}')
    assert not system.valid("autoscale", 200, b"not json")
