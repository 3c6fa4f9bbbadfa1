"""Ray Serve's autoscaler for benchmarks/autoscale.py:
`python rayserve_autoscale.py PORT RAY_TEMP_DIR AUTOSCALING_JSON REPLICAS_LOG`.

Starts a private Ray (its own temp dir and ports) and serves at `/` the benchmark's model:
20 ms per batch of at most 4 (`@serve.batch`, blocking the replica as a busy worker does),
autoscaled by Ray Serve with AUTOSCALING_JSON as its `autoscaling_config`, each replica
taking one of the machine's CPUs (as Clipper's autoscaler counts them). Every 0.5 s it
appends `MONOTONIC_S RUNNING_REPLICAS` to REPLICAS_LOG (one clock for every process of the
machine). Shuts both down on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

import ray
from ray import serve

BATCH, BATCH_S = 4, 0.02
LOGGING = {"enable_access_log": False}  # no per-request access log (a production setting)
SAMPLE_S = 0.5


@serve.deployment(max_ongoing_requests=16)
class Slow:
    @serve.batch(max_batch_size=BATCH, batch_wait_timeout_s=0.0)
    async def predict(self, rows: list[list[float]]) -> list[float]:
        # The batch's cost in time, whatever its size; blocking, as a busy worker is.
        time.sleep(BATCH_S)  # noqa: ASYNC251
        return [float(sum(row)) for row in rows]

    async def __call__(self, request: Any) -> dict[str, Any]:
        return {"output": await self.predict((await request.json())["input"])}


def running_replicas() -> int:
    status = serve.status().applications.get("bench")
    if status is None:
        return 0
    deployment = status.deployments.get("Slow")
    states = deployment.replica_states if deployment is not None else {}
    return int(states.get("RUNNING", 0))


def main(port: int, temp_dir: str, autoscaling: str, replicas_log: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ray.init(
        address="local", _temp_dir=temp_dir, include_dashboard=False, num_cpus=os.cpu_count(),
        object_store_memory=256 * 2**20, log_to_driver=False,
    )  # fmt: skip
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=LOGGING)
        deployment = Slow.options(autoscaling_config=json.loads(autoscaling))
        serve.run(deployment.bind(), name="bench", route_prefix="/", logging_config=LOGGING)
        with open(replicas_log, "a", encoding="utf-8") as log:
            while not stop.wait(SAMPLE_S):
                log.write(f"{time.monotonic():.3f} {running_replicas()}\n")
                log.flush()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:])
