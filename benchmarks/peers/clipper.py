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
from clipper.artifacts.pytorch import pytorch_artifact
from clipper.cli.launcher import server_command
from clipper.client import AdminClient, QueryClient
from clipper.core.config import Settings

__all__ = ["Clipper", "serve_clipper"]

SLO_US = 1_000_000
"""Generous: no answer should come from the default output."""
CNN_MAX_IN_FLIGHT = 2
"""The CNN's batches in flight per replica: the next batch (1.5 MB of images) is sent while
one computes, so the worker never waits for it (1.3-1.4x the queries of one at a time)."""
_REPO_ROOT = Path(__file__).resolve().parents[2]
_SERVER_READY_TIMEOUT_S = 30.0


def noop(inputs: list[Any]) -> list[Any]:
    """Returns its inputs."""
    return [x.tolist() for x in inputs]


def cnn_labels(network: Any, inputs: list[Any]) -> list[int]:
    """The CNN's labels of a batch of flat images (the pytorch artifact's `func`)."""
    return model.predict_images(network, inputs)


def text_closure() -> Callable[[list[Any]], list[int]]:
    """The TF-IDF pipeline, trained now, as a batch predict function of strings."""
    trained = model.train_text_model()

    def predict(inputs: list[Any]) -> list[int]:
        return model.predict_texts(trained, inputs)

    return predict


def workload_artifact(workload: str, device: str = "cpu") -> tuple[str, bytes]:
    """The input type and the artifact Clipper serves `workload` with: the CNN as a pytorch
    artifact on `device`, every other model as a closure."""
    if workload == "cnn":
        return "doubles", pytorch_artifact(model.build_cnn(), cnn_labels, device=device)
    if workload == "text":
        return "strings", closure_artifact(text_closure())
    return "doubles", closure_artifact(noop if workload == "noop" else sklearn_closure())


def sklearn_closure() -> Callable[[list[Any]], list[int]]:
    """The LogisticRegression, trained now, as a batch predict function."""
    trained = model.train_sklearn_model()

    def predict(inputs: list[Any]) -> list[int]:
        return model.predict_rows(trained, inputs)

    return predict


class Clipper(System):
    """`clipper start`, then the app, a closure model and the link via AdminClient."""

    name = "clipper"
    batching = "adaptive (batch_size=-1, AIMD with slow start against the app's SLO, 1 s; " \
        "the CNN with max_in_flight=2); sklearn: batch_size=1"  # fmt: skip

    def start(self, workload: str, scratch: Path, python: Path) -> Instance:
        return serve_clipper(self, workload, scratch)

    def decode(self, workload: str, body: bytes) -> Any:
        answer = orjson.loads(body)
        if answer.get("default"):
            raise ValueError(f"default answer: {answer.get('default_explanation')}")
        return answer["output"]


def serve_clipper(system: System, workload: str, scratch: Path, device: str = "cpu",
                  env: dict[str, str] | None = None, **options: Any) -> Instance:  # fmt: skip
    """`clipper start` from `scratch` (with `env` on top of this process's), then `workload`
    deployed as app and model `bench` (the CNN on `device`; `options` go to
    `deploy_artifact`); returns once it answers correctly."""
    values: dict[str, Any] = {
        "cluster_name": "peers", "state_dir": scratch / "state", "query_port": free_port(),
        "admin_port": free_port(), "rpc_port": free_port(),
    }  # fmt: skip
    settings = Settings(**values)
    input_type, artifact = workload_artifact(workload, device)
    data = model.workload_input(workload)
    request = Request(settings.query_port, "/bench/predict", orjson.dumps({"input": data}))
    argv = server_command(settings, ["--grpc-port", str(free_port())])
    python_path = os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")]))
    started = time.monotonic()
    tree = ProcessTree(argv, scratch, {**os.environ, **(env or {}), "PYTHONPATH": python_path},
                       scratch / "server.log")  # fmt: skip
    try:
        _wait_healthy(settings, tree, started + _SERVER_READY_TIMEOUT_S)
        server_ready_s = time.monotonic() - started
        deploying = time.monotonic()
        batch_size = 1 if workload == "sklearn" else -1
        in_flight = CNN_MAX_IN_FLIGHT if workload == "cnn" else 1
        _deploy(settings, input_type, artifact, batch_size, in_flight, **options)
        wait_valid(system, workload, tree, request, deploying + READY_TIMEOUT_S)
    except BaseException:
        tree.stop()
        raise
    now = time.monotonic()
    notes = {"server_ready_s": server_ready_s, "deploy_s": now - deploying}
    return Instance(tree, request, now - started, notes, lambda: _defaults(settings))


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


def _deploy(settings: Settings, input_type: str, artifact: bytes, batch_size: int,
            max_in_flight: int, **options: Any) -> None:  # fmt: skip
    """App `bench` (SLO_US), model `bench` version 1 (the artifact, `max_in_flight` batches
    per replica), linked, with the cache off; `options` go to `deploy_artifact`
    (`num_replicas`, `resources`)."""
    with AdminClient.from_settings(settings, timeout_s=180.0) as admin:
        admin.add_app("bench", input_type, "-1", SLO_US)
        admin.deploy_artifact("bench", 1, input_type, artifact, batch_size=batch_size, **options)
        if max_in_flight != 1:
            admin.set_batch_policy("bench", max_in_flight=max_in_flight)
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
