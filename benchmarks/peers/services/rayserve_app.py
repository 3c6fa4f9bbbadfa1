"""Ray Serve: `python rayserve_app.py PORT WORKLOAD RAY_TEMP_DIR [MAX_ONGOING]`. Starts a
private Ray (its own temp dir and ports), serves the workload at `/` with at most MAX_ONGOING
requests in flight on its replica (Ray Serve's default where it is `default` or absent), and
shuts both down on SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import peer_model
import ray
from ray import serve

BATCH_SIZE, BATCH_WAIT_S = 32, 0.002
LOGGING = {"enable_access_log": False}  # no per-request access log (a production setting)


@serve.deployment
class Noop:
    async def __call__(self, request: Any) -> dict[str, Any]:
        return {"output": (await request.json())["input"]}


@serve.deployment
class Sklearn:
    def __init__(self) -> None:
        self.model = peer_model.train_sklearn_model()

    async def __call__(self, request: Any) -> dict[str, Any]:
        row = (await request.json())["input"]
        return {"output": peer_model.predict_rows(self.model, [row])[0]}


@serve.deployment
class SklearnBatch:
    def __init__(self) -> None:
        self.model = peer_model.train_sklearn_model()

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def predict(self, rows: list[list[float]]) -> list[int]:
        return peer_model.predict_rows(self.model, rows)

    async def __call__(self, request: Any) -> dict[str, Any]:
        return {"output": await self.predict((await request.json())["input"])}


# Both cores for the CNN's torch threads (Ray sets OMP_NUM_THREADS to an actor's num_cpus).
@serve.deployment(ray_actor_options={"num_cpus": 2})
class Cnn:
    def __init__(self) -> None:
        self.network = peer_model.build_cnn()

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def predict(self, images: list[list[float]]) -> list[int]:
        return peer_model.predict_images(self.network, images)

    async def __call__(self, request: Any) -> dict[str, Any]:
        return {"output": await self.predict((await request.json())["input"])}


@serve.deployment
class Text:
    def __init__(self) -> None:
        self.model = peer_model.train_text_model()

    @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def predict(self, texts: list[str]) -> list[int]:
        return peer_model.predict_texts(self.model, texts)

    async def __call__(self, request: Any) -> dict[str, Any]:
        return {"output": await self.predict((await request.json())["input"])}


DEPLOYMENTS = {"noop": Noop, "sklearn": Sklearn, "sklearn-batch": SklearnBatch, "cnn": Cnn,
               "text": Text}  # fmt: skip


def main(port: int, workload: str, temp_dir: str, max_ongoing: str = "default") -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ray.init(
        address="local", _temp_dir=temp_dir, include_dashboard=False, num_cpus=2,
        object_store_memory=256 * 2**20, log_to_driver=False,
    )  # fmt: skip
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=LOGGING)
        deployment = DEPLOYMENTS[workload]
        if max_ongoing != "default":
            deployment = deployment.options(max_ongoing_requests=int(max_ongoing))
        serve.run(deployment.bind(), name="bench", route_prefix="/", logging_config=LOGGING)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:])
