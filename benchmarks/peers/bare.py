"""The bare baseline: the ceiling any server on this machine can reach. On the no-op and the
one-row scikit-learn model, a minimal HTTP server calling the model in its own process; on
the CNN and the text model, the model itself in-process at its best batch size (no HTTP)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import free_port
from benchmarks.peers.results import Ceiling
from benchmarks.peers.system import Instance, Request, System, service_dir

__all__ = ["Bare", "measure_ceiling"]

SERVICES = Path(__file__).parent / "services"
_SLACK_S = 120.0


def measure_ceiling(workload: str, scratch: Path, python: Path, seconds: float,
                    device: str = "cpu", sizes: tuple[int, ...] = ()) -> Ceiling:  # fmt: skip
    """Run services/bare_ceiling.py in a fresh process of `python` for about `seconds`, at
    each of `sizes` (its own list where empty)."""
    directory = service_dir(scratch)
    shutil.copy(SERVICES / "bare_ceiling.py", directory / "bare_ceiling.py")
    argv = [str(python), "bare_ceiling.py", workload, f"{seconds:g}", device]
    argv += [",".join(str(size) for size in sizes)] if sizes else []
    with open(directory / "server.log", "ab") as log:
        output = subprocess.run(argv, cwd=directory, stdout=subprocess.PIPE, stderr=log,
                                check=True, timeout=seconds + _SLACK_S).stdout  # fmt: skip
    found = json.loads(output)
    return Ceiling(found["batch_size"], found["items_per_s"], found["per_batch_size"])


class Bare(System):
    """asyncio + httptools + the model, one process, no batching; or the model alone."""

    name = "bare"
    workloads = ("noop", "sklearn", "cnn", "text")
    in_process = ("cnn", "text")
    batching = "cnn, text: the model alone in-process, at its best batch size of 1-128"

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        directory = service_dir(scratch)
        shutil.copy(SERVICES / "bare_server.py", directory / "bare_server.py")
        port = free_port()
        data = model.NOOP_INPUT if workload == "noop" else model.SKLEARN_ROW
        request = Request(port, "/predict", orjson.dumps({"input": data}))
        argv = [str(python), "bare_server.py", str(port), workload]
        return self.launch(workload, argv, directory, request)

    def ceiling(self, workload: str, scratch: Path, python: Path, seconds: float) -> Ceiling:
        return measure_ceiling(workload, scratch, python, seconds)

    def decode(self, workload: str, body: bytes) -> Any:
        return orjson.loads(body)["output"]
