"""Ray Serve's side of benchmarks/autoscale.py: its autoscaler on the same model and trace.

Ray Serve runs in its own virtual environment, installed and started by the peers
benchmark's machinery (benchmarks/peers: `RayServe`'s requirements, `System.launch`,
`ProcessTree`), from `services/rayserve_autoscale.py`. Its replicas are counted by that
script, which samples `serve.status()` into a log read back here.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers.procs import free_port
from benchmarks.peers.rayserve import SERVICES, RayServe
from benchmarks.peers.system import Instance, Request

__all__ = ["RayServeAutoscaled", "ServeRun", "ray_serve_autoscaled", "serve_autoscaling"]

VENV_ROOT = Path("~/.cache/clipper-peers").expanduser()
"""Where the peers benchmark keeps its systems' environments (its `--venv-root` default)."""
PROBE = {"input": [1.0, 2.0]}


def serve_autoscaling(clipper: Mapping[str, Any], target_ongoing: float) -> dict[str, Any]:
    """Ray Serve's `autoscaling_config` with Clipper's bounds and windows: the same
    replicas, a look-back as long as Clipper's upscale window, no extra delay up, the same
    delay down, and (with `min_replicas` 0) the same delay to zero."""
    config: dict[str, Any] = {
        "min_replicas": clipper["min_replicas"],
        "max_replicas": clipper["max_replicas"],
        "target_ongoing_requests": target_ongoing,
        "look_back_period_s": clipper["upscale_window_s"],
        "upscale_delay_s": 0.5,
        "downscale_delay_s": clipper["downscale_delay_s"],
        "metrics_interval_s": 0.5,
    }
    if clipper["min_replicas"] == 0:
        config["downscale_to_zero_delay_s"] = clipper["scale_to_zero_after_s"]
    return config


class RayServeAutoscaled(RayServe):
    """The autoscale benchmark's model on Ray Serve, autoscaled by Ray Serve."""

    name = "rayserve-autoscale"
    environment = "rayserve"

    def __init__(self, autoscaling: Mapping[str, Any], replicas_log: Path) -> None:
        self.autoscaling = dict(autoscaling)
        self.replicas_log = replicas_log

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        shutil.copy(SERVICES / "rayserve_autoscale.py", scratch / "rayserve_autoscale.py")
        port = free_port()
        request = Request(port, "/", orjson.dumps(PROBE))
        argv = [str(python), "rayserve_autoscale.py", str(port), str(scratch / "ray"),
                json.dumps(self.autoscaling), str(self.replicas_log)]  # fmt: skip
        env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": ""}
        return self.launch(workload, argv, scratch, request, env)

    def valid(self, workload: str, status: int, body: bytes) -> bool:
        if status != 200:
            return False
        try:
            return bool(orjson.loads(body)["output"] == sum(PROBE["input"]))
        except (ValueError, KeyError, TypeError):
            return False


@dataclass(frozen=True, slots=True)
class ServeRun:
    """A running Ray Serve: its port, and its replica counts so far."""

    port: int
    replicas_log: Path

    def replicas(self, since: float, until: float) -> list[tuple[float, int]]:
        """(seconds since `since`, running replicas) samples between the two monotonic times."""
        samples = []
        with contextlib.suppress(OSError):
            for line in self.replicas_log.read_text().splitlines():
                at, count = line.split()
                if since <= float(at) <= until:
                    samples.append((float(at) - since, int(count)))
        return samples


@contextlib.contextmanager
def ray_serve_autoscaled(autoscaling: Mapping[str, Any], scratch: Path) -> Iterator[ServeRun]:
    """Install Ray Serve's environment if missing, start it on the benchmark's model with
    `autoscaling`, and stop every process it started afterwards."""
    system = RayServeAutoscaled(autoscaling, scratch / "replicas.log")
    system.install(VENV_ROOT)
    instance = system.start("autoscale", scratch, system.python(VENV_ROOT))
    try:
        yield ServeRun(instance.request.port, system.replicas_log)
    finally:
        instance.tree.stop()
