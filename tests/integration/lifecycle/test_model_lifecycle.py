"""Model lifecycle under load: versions, scaling, crashes, hangs, with nothing lost."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.artifacts.format import pack_directory
from clipper.artifacts.python import directory_artifact
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, pid_alive, wait_until


@pytest.fixture
def fast_server(configured_server: ServerFactory) -> ServerHandle:
    """A server with short restart backoffs and heartbeat timeouts."""
    return configured_server(
        "lifecycle",
        restart_backoff_initial_s=0.05,
        restart_backoff_max_s=0.4,
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=1.5,
    )


def version_one(inputs: list[Any]) -> list[float]:
    """Answers 1.0, a little slowly."""
    time.sleep(0.002)
    return [1.0] * len(inputs)


def version_two(inputs: list[Any]) -> list[float]:
    """Answers 2.0, a little slowly."""
    time.sleep(0.002)
    return [2.0] * len(inputs)


def _replicas(server: ServerHandle, model: str) -> list[dict[str, Any]]:
    replicas = server.admin.get_all_containers(verbose=True)
    return [r for r in replicas if r["model_name"] == model]


class Load:
    """Closed-loop clients sending distinct inputs until stopped; counts every outcome."""

    def __init__(self, server: ServerHandle, app: str, clients: int) -> None:
        self.server, self.app, self.clients = server, app, clients
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _client(self, client: httpx.AsyncClient, index: int) -> None:
        sent = 0
        while not self._stop.is_set():
            sent += 1
            try:
                response = await client.post(
                    f"/{self.app}/predict", json={"input": [float(index), float(sent)]}
                )
            except httpx.HTTPError as exc:
                self.counts[f"transport error {type(exc).__name__}"] += 1
                continue
            self._count(response)

    def _count(self, response: httpx.Response) -> None:
        self.counts["sent"] += 1
        if response.status_code != 200:
            self.counts[f"http {response.status_code}"] += 1
            return
        reply = response.json()
        if reply["default"]:
            self.counts[f"default: {reply['default_explanation'].split(':')[0]}"] += 1
        else:
            self.counts[f"model: {reply['output']}"] += 1

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.server.query_url, timeout=30) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(self.clients)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)


def _kill_random_worker(server: ServerHandle, model: str, rng: random.Random) -> None:
    pids = [r["pid"] for r in _replicas(server, model) if r["pid"] and r["state"] == "ready"]
    if pids:
        pid = rng.choice(pids)
        server.worker_pids.add(pid)
        os.kill(pid, signal.SIGKILL)


def test_chaos_every_query_is_answered(fast_server: ServerHandle) -> None:
    server = fast_server
    deploy(server, "chaos", version_one, slo_us=2_000_000)
    server.admin.set_cache(False, app_name="chaos")
    rng = random.Random(0)

    def scale(replicas: int) -> None:
        server.admin.set_num_replicas("chaos", replicas)

    def roll_back() -> None:
        server.admin.set_model_version("chaos", 1)

    schedule = [
        (2.0, lambda: scale(4)),
        (5.0, lambda: deploy(server, "chaos", version_two, version="2", link=False)),
        (10.0, roll_back),
        (14.0, lambda: scale(1)),
    ]
    with Load(server, "chaos", clients=8) as load:
        started = time.monotonic()
        next_kill = started + 1.0
        while (elapsed := time.monotonic() - started) < 20:
            if schedule and elapsed >= schedule[0][0]:
                schedule.pop(0)[1]()
            if time.monotonic() >= next_kill:
                _kill_random_worker(server, "chaos", rng)
                next_kill += 2.0
            time.sleep(0.05)
    print("\nchaos counts:", dict(load.counts))
    assert load.counts["sent"] > 100
    assert {k: v for k, v in load.counts.items() if k.startswith(("http", "transport"))} == {}
    answered = load.counts["model: 1.0"] + load.counts["model: 2.0"]
    assert answered > load.counts["sent"] * 0.5
    assert load.counts["model: 2.0"] > 0
    wait_until(lambda: _settled(server), 20, "answers from version 1 again")


def _settled(server: ServerHandle) -> bool:
    replies = [server.predict("chaos", {"input": [time.time(), float(i)]}).json() for i in range(5)]
    return all(not reply["default"] and reply["output"] == 1.0 for reply in replies)


def sleepy(inputs: list[Any]) -> list[float]:
    """Half a second per batch."""
    time.sleep(0.5)
    return [float(x[0]) for x in inputs]


def test_scale_down_never_fails_an_in_flight_query(fast_server: ServerHandle) -> None:
    server = fast_server
    deploy(server, "shrink", sleepy, replicas=4, batch_size=1, slo_us=10_000_000)
    server.admin.set_cache(False, app_name="shrink")

    async def queries_while_scaling_down() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.query_url, timeout=30) as client:
            sent = [
                asyncio.create_task(client.post("/shrink/predict", json={"input": [float(i)]}))
                for i in range(8)
            ]
            await asyncio.sleep(0.2)  # let the first batches reach the replicas
            scale = asyncio.to_thread(server.admin.set_num_replicas, "shrink", 1)
            responses = await asyncio.gather(*sent, scale)
        return [response.json() for response in responses[:-1]]

    replies = asyncio.run(queries_while_scaling_down())
    assert [reply["output"] for reply in replies] == [float(i) for i in range(8)]
    wait_until(lambda: len(_replicas(server, "shrink")) == 1, 20, "scale down to one replica")


def _write_model_dir(path: Path, source: str) -> bytes:
    path.mkdir(parents=True, exist_ok=True)
    (path / "predict.py").write_text(source)
    return pack_directory(path, directory_artifact(path))


CRASH_WHEN_MARKED = """
import os, sys
if os.path.exists(os.path.join(os.path.dirname(__file__), "..", "..", "..", "crash-marker")):
    print("crash marker found, exiting at start-up", flush=True)
    sys.exit(7)

def predict(inputs):
    return [1.0 for _ in inputs]
"""


def _deploy_archive(server: ServerHandle, name: str, archive: bytes) -> None:
    server.admin.add_app(name, "doubles", default_output="-1", latency_slo_micros=1_000_000)
    server.admin.upload_artifact(name, "1", archive)
    server.admin.add_model(name, "1", "doubles")
    server.admin.add_model_links(name, [name])


def test_a_replica_that_keeps_crashing_backs_off_and_shows_its_error(
    fast_server: ServerHandle, tmp_path: Path
) -> None:
    server = fast_server
    _deploy_archive(server, "crashy", _write_model_dir(tmp_path / "crashy", CRASH_WHEN_MARKED))
    # The artifact lives in <state>/models/crashy/1; the marker goes in <state>.
    (server.state_dir / "crash-marker").write_text("")
    first = _replicas(server, "crashy")[0]
    server.worker_pids.add(first["pid"])
    os.kill(first["pid"], signal.SIGKILL)
    looping = wait_until(
        lambda: [r for r in _replicas(server, "crashy") if r["state"] == "crash_looping"],
        20,
        "the replica to be marked crash-looping",
    )[0]
    assert "crash marker found" in looping["last_error"]
    restarts = looping["restarts"]
    assert restarts >= 3
    (server.state_dir / "crash-marker").unlink()
    wait_until(
        lambda: server.predict("crashy", {"input": [1.0]}).json()["default"] is False,
        20,
        "the replica to recover once it can start",
    )


def hang_on_negative(inputs: list[Any]) -> list[float]:
    """Hangs forever (holding the worker's only thread) on a negative input."""
    if any(x[0] < 0 for x in inputs):
        while True:
            pass
    return [float(x[0]) for x in inputs]


def test_a_hung_worker_is_replaced(fast_server: ServerHandle) -> None:
    server = fast_server
    deploy(server, "hangs", hang_on_negative, slo_us=500_000)
    old_pid = _replicas(server, "hangs")[0]["pid"]
    server.worker_pids.add(old_pid)
    reply = server.predict("hangs", {"input": [-1.0]}).json()
    assert reply["default"] is True
    wait_until(lambda: not pid_alive(old_pid), 15, "the hung worker to be killed")
    wait_until(
        lambda: server.predict("hangs", {"input": [3.0]}).json()["output"] == 3.0,
        20,
        "a new worker to answer",
    )
    assert _replicas(server, "hangs")[0]["pid"] != old_pid


def print_then_raise(inputs: list[Any]) -> list[float]:
    """Prints to stdout, then raises."""
    print("hello from the model", flush=True)
    raise ValueError("model exploded on purpose")


def test_logs_hold_worker_output_and_tracebacks(server: ServerHandle) -> None:
    deploy(server, "noisy", print_then_raise)
    reply = server.predict("noisy", {"input": [1.0]}).json()
    assert reply["default"] is True
    assert "ValueError raised by noisy:1" in reply["default_explanation"]
    assert "exploded" not in reply["default_explanation"]  # the text is the log's
    logs = server.admin.get_logs()
    worker_log = next(log["content"] for log in logs if log["name"] == "noisy-1-0.log")
    assert "hello from the model" in worker_log
    assert "Traceback" in worker_log
    assert "ValueError: model exploded on purpose" in worker_log
