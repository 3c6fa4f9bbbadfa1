"""MLServer: the Open Inference Protocol (V2) over REST; the sklearn model through
mlserver-sklearn, the no-op as a custom runtime; adaptive batching for its own batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["MLServer"]

SERVICES = Path(__file__).parent / "services"
MAX_BATCH_SIZE, MAX_BATCH_TIME_S = 32, 0.002


def model_settings(workload: str) -> dict[str, Any]:
    """model-settings.json of model `bench` for `workload`."""
    if workload == "noop":
        return {"name": "bench", "implementation": "mlserver_runtime.NoopModel"}
    settings: dict[str, Any] = {
        "name": "bench",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    if workload == "sklearn-batch":
        settings.update(max_batch_size=MAX_BATCH_SIZE, max_batch_time=MAX_BATCH_TIME_S)
    return settings


class MLServer(System):
    """`mlserver start` on a folder with settings.json and one model, `bench`."""

    name = "mlserver"
    requirements = ("mlserver",)
    batching = f"adaptive batching: max_batch_size={MAX_BATCH_SIZE}, " \
        f"max_batch_time={MAX_BATCH_TIME_S} s"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        model_dir = directory / "models" / "bench"
        model_dir.mkdir(parents=True)
        shutil.copy(SERVICES / "mlserver_runtime.py", model_dir / "mlserver_runtime.py")
        shutil.copy(SERVICES / "mlserver_start.py", directory / "mlserver_start.py")
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings(workload)))
        port = free_port()
        # debug=false: MLServer's production setting (no per-request access log).
        settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                    "metrics_port": free_port(), "debug": False}  # fmt: skip
        (directory / "settings.json").write_text(json.dumps(settings))
        data = model.NOOP_INPUT if workload == "noop" else model.SKLEARN_ROW
        tensor = {"name": "input-0", "shape": [1, len(data)], "datatype": "FP64", "data": data}
        request = Request(port, "/v2/models/bench/infer", orjson.dumps({"inputs": [tensor]}))
        mlserver = python.parent / "mlserver"
        argv = [str(python), "mlserver_start.py", str(mlserver), workload]
        return self.launch(workload, argv, directory, request)

    def decode(self, workload: str, body: bytes) -> Any:
        data = orjson.loads(body)["outputs"][0]["data"]
        return data if workload == "noop" else data[0]
