"""TorchServe (Java frontend, Python backend workers): a custom handler in a model archive,
one worker; `batch_size` + `max_batch_delay` for its own batching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["TorchServe"]

SERVICES = Path(__file__).parent / "services"
BATCH_SIZE, MAX_BATCH_DELAY_MS = 32, 2
BATCHED = ("sklearn-batch", "cnn", "text")
_ARCHIVE_TIMEOUT_S = 120


def config_properties(workload: str, port: int, store: Path) -> str:
    """config.properties: private ports, no token auth, one worker of the model."""
    batch = workload in BATCHED
    models = {workload: {"1.0": {
        "defaultVersion": True, "marName": f"{workload}.mar", "minWorkers": 1, "maxWorkers": 1,
        "batchSize": BATCH_SIZE if batch else 1, "maxBatchDelay": MAX_BATCH_DELAY_MS,
        "responseTimeout": 120,
    }}}  # fmt: skip
    lines = {
        "inference_address": f"http://127.0.0.1:{port}",
        "management_address": f"http://127.0.0.1:{free_port()}",
        "metrics_address": f"http://127.0.0.1:{free_port()}",
        "grpc_inference_port": free_port(),
        "grpc_management_port": free_port(),
        "disable_token_authorization": "true",
        "install_py_dep_per_model": "false",
        "async_logging": "true",
        "model_store": str(store),
        "load_models": f"{workload}.mar",
        "default_workers_per_model": 1,
        "models": json.dumps(models),
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


class TorchServe(System):
    """`torchserve --start --foreground --ncs` with one model archive."""

    name = "torchserve"
    requirements = ("torch", "torchserve")
    batching = f"batch_size={BATCH_SIZE}, max_batch_delay={MAX_BATCH_DELAY_MS} ms"

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(SERVICES / "torchserve_handler.py", directory / "handler.py")
        store = directory / "store"
        store.mkdir()
        archiver = [str(python.parent / "torch-model-archiver"), "--model-name", workload,
                    "--version", "1.0", "--handler", "handler.py", "--extra-files",
                    "peer_model.py", "--export-path", str(store)]  # fmt: skip
        subprocess.run(archiver, cwd=directory, check=True, capture_output=True,
                       timeout=_ARCHIVE_TIMEOUT_S)  # fmt: skip
        port = free_port()
        (directory / "config.properties").write_text(config_properties(workload, port, store))
        body = orjson.dumps({"input": model.workload_input(workload)})
        request = Request(port, f"/predictions/{workload}", body)
        argv = [str(python.parent / "torchserve"), "--start", "--foreground", "--ncs",
                "--disable-token-auth", "--model-store", str(store),
                "--ts-config", "config.properties"]  # fmt: skip
        # TorchServe keeps its pid file in the temp dir: a private one per start.
        env = {"TMPDIR": str(directory), "PATH": f"{python.parent}:{os.environ['PATH']}"}
        return self.launch(workload, argv, directory, request, env)

    def decode(self, workload: str, body: bytes) -> Any:
        return orjson.loads(body)["output"]
