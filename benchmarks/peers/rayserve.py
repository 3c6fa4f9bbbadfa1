"""Ray Serve: a private Ray started by the service script itself (`ray.init(address="local")`
with its own temp dir), one replica, `@serve.batch` for its own batching."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["RayServe", "RayServeDefault"]

SERVICES = Path(__file__).parent / "services"
SERVE_BATCH = "`@serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)`"
"""Its own batching in the batched workloads (as in services/rayserve_app.py); the CNN's
replica has `num_cpus=2`, so that Ray gives torch both cores."""


class RayServe(System):
    """`serve.run` of one deployment at `/`, driven over Serve's HTTP proxy, with room for 64
    requests in flight on its replica."""

    name = "rayserve"
    requirements = ("torch", "rayserve")
    max_ongoing: int | None = 64
    """The replica's `max_ongoing_requests`; None keeps Ray Serve's default (5)."""
    batching = f"{SERVE_BATCH}, max_ongoing_requests=64"

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(SERVICES / "rayserve_app.py", directory / "rayserve_app.py")
        port = free_port()
        request = Request(port, "/", orjson.dumps({"input": model.workload_input(workload)}))
        limit = "default" if self.max_ongoing is None else str(self.max_ongoing)
        argv = [str(python), "rayserve_app.py", str(port), workload, str(directory / "ray"), limit]
        env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": ""}
        return self.launch(workload, argv, directory, request, env)

    def decode(self, workload: str, body: bytes) -> Any:
        return orjson.loads(body)["output"]


class RayServeDefault(RayServe):
    """The same at Ray Serve's default `max_ongoing_requests` (5), which queues the rest of
    32 concurrent requests in its proxy."""

    name = "rayserve-default"
    environment = "rayserve"
    max_ongoing = None
    batching = f"{SERVE_BATCH}, max_ongoing_requests default (5)"
