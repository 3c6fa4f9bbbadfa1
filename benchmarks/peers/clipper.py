"""This project: a real server process (`clipper start`) and one real worker process per
model, deployed as a closure through the admin client."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import model
from benchmarks.peers.procs import ProcessTree, free_port
from benchmarks.peers.system import READY_TIMEOUT_S, Instance, Request, System, wait_valid
from clipper.artifacts.python import closure_artifact
from clipper.cli.launcher import server_command
from clipper.client import AdminClient, QueryClient
from clipper.core.config import Settings

__all__ = ["Clipper"]

SLO_US = 1_000_000
"""Generous: no answer should come from the default output."""
_REPO_ROOT = Path(__file__).resolve().parents[2]
_SERVER_READY_TIMEOUT_S = 30.0


def noop(inputs: list[Any]) -> list[Any]:
    """Returns its inputs."""
    return [x.tolist() for x in inputs]


def sklearn_closure() -> Callable[[list[Any]], list[int]]:
    """The LogisticRegression, trained now, as a batch predict function."""
    trained = model.train_sklearn_model()

    def predict(inputs: list[Any]) -> list[int]:
        return model.predict_rows(trained, inputs)

    return predict


class Clipper(System):
    """`clipper start`, then the app, a closure model and the link via AdminClient."""

    name = "clipper"
    batching = "adaptive (batch_size=-1, AIMD against a 1 s SLO) vs batch_size=1"

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        values: dict[str, Any] = {
            "cluster_name": "peers", "state_dir": scratch / "state", "query_port": free_port(),
            "admin_port": free_port(), "rpc_port": free_port(),
        }  # fmt: skip
        settings = Settings(**values)
        func = noop if workload == "noop" else sklearn_closure()
        data = model.NOOP_INPUT if workload == "noop" else model.SKLEARN_ROW
        request = Request(settings.query_port, "/bench/predict", orjson.dumps({"input": data}))
        argv = server_command(settings, ["--grpc-port", str(free_port())])
        python_path = os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")]))
        started = time.monotonic()
        tree = ProcessTree(argv, scratch, {**os.environ, "PYTHONPATH": python_path},
                           scratch / "server.log")  # fmt: skip
        try:
            _wait_healthy(settings, tree, started + _SERVER_READY_TIMEOUT_S)
            server_ready_s = time.monotonic() - started
            deploying = time.monotonic()
            batch_size = 1 if workload == "sklearn" else -1
            _deploy(settings, func, batch_size)
            wait_valid(self, workload, tree, request, deploying + READY_TIMEOUT_S)
        except BaseException:
            tree.stop()
            raise
        now = time.monotonic()
        notes = {"server_ready_s": server_ready_s, "deploy_s": now - deploying}
        return Instance(tree, request, now - started, notes, lambda: _defaults(settings))

    def decode(self, workload: str, body: bytes) -> Any:
        answer = orjson.loads(body)
        if answer.get("default"):
            raise ValueError(f"default answer: {answer.get('default_explanation')}")
        return answer["output"]


def _wait_healthy(settings: Settings, tree: ProcessTree, deadline: float) -> None:
    with QueryClient.from_settings(settings, timeout_s=1.0) as client:
        while time.monotonic() < deadline:
            if not tree.alive():
                raise RuntimeError(f"the server exited: {tree.last_error()}")
            with contextlib.suppress(Exception):
                client.healthz()
                return
            time.sleep(0.01)
    raise TimeoutError("the server did not answer /healthz")


def _deploy(settings: Settings, func: Callable[[list[Any]], Any], batch_size: int) -> None:
    """App `bench`, model `bench` version 1 (the closure), linked, with the cache off."""
    with AdminClient.from_settings(settings, timeout_s=60.0) as admin:
        admin.add_app("bench", "doubles", "-1", SLO_US)
        admin.deploy_artifact("bench", 1, "doubles", closure_artifact(func), batch_size=batch_size)
        admin.add_model_links("bench", ["bench"])
        # Repeated identical inputs would be cache hits: measure the model path instead.
        admin.set_cache(False, app_name="bench")


def _defaults(settings: Settings) -> int:
    """Default answers of app `bench` so far, from the server's Prometheus metrics."""
    with QueryClient.from_settings(settings, timeout_s=10.0) as client:
        text = client.metrics_text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("clipper_app_default_answers_total{") and 'app="bench"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)
