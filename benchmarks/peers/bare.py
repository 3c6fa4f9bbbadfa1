"""The bare in-process baseline: the ceiling any server on this machine can reach."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["Bare"]


class Bare(System):
    """asyncio + httptools + the model, one process, no batching."""

    name = "bare"
    workloads = ("noop", "sklearn")

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(
            Path(__file__).parent / "services" / "bare_server.py", directory / "bare_server.py"
        )
        port = free_port()
        data = model.NOOP_INPUT if workload == "noop" else model.SKLEARN_ROW
        request = Request(port, "/predict", orjson.dumps({"input": data}))
        argv = [str(python), "bare_server.py", str(port), workload]
        return self.launch(workload, argv, directory, request)

    def decode(self, workload: str, body: bytes) -> Any:
        return orjson.loads(body)["output"]
