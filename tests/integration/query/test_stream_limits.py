"""How a stream ends early, through a real server and worker (issue 24, item 2): the
per-request bounds of the whole stream (`stream_timeout_s`, `max_pieces`), a model that
raises mid-stream, and a worker killed mid-stream (an error event, then the replica
restarts and streams again).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until
from tests.integration.query.test_streaming import read_events, steps

STEP_S = 0.1
PIECES = 8


def counting(counter: str) -> Callable[[list[Any]], Iterator[str]]:
    """8 pieces, STEP_S apart, each step counted in `counter`."""

    def stream(inputs: list[Any]) -> Iterator[str]:
        for index in range(PIECES):
            time.sleep(STEP_S)
            with open(counter, "a") as counted:
                counted.write("x")
            yield f"p{index} "

    return stream


def breaks(inputs: list[Any]) -> Iterator[str]:
    yield "first "
    raise ValueError("secret detail of the model")


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, counter: Path) -> ServerHandle:
    handle = module_server("stream-limits")
    deploy(handle, "counting", counting(str(counter)))
    deploy(handle, "breaks", breaks)
    return handle


def events_of(server: ServerHandle, app: str, **body: Any) -> list[tuple[float, str, Any]]:
    url = f"{server.query_url}/{app}/predict"
    request = {"input": [1.0], "stream": True, **body}
    with httpx.Client(timeout=15) as client, client.stream("POST", url, json=request) as response:
        assert response.status_code == 200
        return list(read_events(response))


def settled(counter: Path) -> int:
    """The step count once no stream is running (a count of whole streams' steps)."""
    wait_until(lambda: _quiet(counter), 10, "streams done")
    return steps(counter)


def _quiet(counter: Path) -> bool:
    before = steps(counter)
    time.sleep(2 * STEP_S)
    return steps(counter) == before


def test_max_pieces_ends_the_stream_and_stops_the_model(
    server: ServerHandle, counter: Path
) -> None:
    before = settled(counter)
    events = events_of(server, "counting", max_pieces=3)
    assert [name for _, name, _ in events] == ["", "", "", "end"]
    end = events[-1][2]
    assert end["finish_reason"] == "length"
    assert end["output"] == "p0 p1 p2 "
    assert end["default"] is False
    assert settled(counter) - before <= 4  # stopped within one step of the third piece


def test_stream_timeout_ends_with_an_error_event(server: ServerHandle, counter: Path) -> None:
    before = settled(counter)
    started = time.monotonic()
    events = events_of(server, "counting", stream_timeout_s=0.35)
    assert time.monotonic() - started < PIECES * STEP_S  # not the whole stream
    names = [name for _, name, _ in events]
    assert names[-1] == "error"
    assert 1 <= names.count("") < PIECES
    error = events[-1][2]
    assert error["code"] == "DeadlineExceeded"
    assert "stream_timeout_s" in error["cause"]
    assert isinstance(error["query_id"], int)
    assert settled(counter) - before < PIECES


def test_bad_limits_are_refused(server: ServerHandle) -> None:
    reply = server.predict("counting", {"input": [1.0], "stream": True, "max_pieces": 0})
    assert reply.status_code == 400
    assert reply.json()["code"] == "InvalidInput"


def test_an_error_mid_stream_is_an_error_event(server: ServerHandle) -> None:
    events = events_of(server, "breaks")
    assert events[0][1:] == ("", "first ")
    (_, name, error) = events[-1]
    assert name == "error"
    assert error["code"] == "ModelError"
    assert "ValueError" in error["cause"]
    assert "secret detail" not in error["cause"]  # the model's text stays in the server log
    assert len(events) == 2


def counting_pid(server: ServerHandle) -> int | None:
    """The pid of model counting's one replica (remembered for cleanup), if it runs."""
    server.replica_pids()
    replicas = server.admin.get_all_containers(verbose=True)
    return next((r["pid"] for r in replicas if r["model_name"] == "counting" and r["pid"]), None)


def test_a_worker_killed_mid_stream_ends_it_and_the_replica_restarts(server: ServerHandle) -> None:
    pid = counting_pid(server)
    assert pid is not None
    url = f"{server.query_url}/counting/predict"
    events = []
    body = {"input": [1.0], "stream": True}
    with httpx.Client(timeout=15) as client, client.stream("POST", url, json=body) as response:
        for event in read_events(response):
            events.append(event)
            if len(events) == 2:
                os.kill(pid, signal.SIGKILL)
    names = [name for _, name, _ in events]
    assert names[-1] == "error"
    assert 2 <= names.count("") < PIECES
    assert events[-1][2]["code"] == "ReplicaCrashed"

    def restarted() -> bool:
        return counting_pid(server) not in (None, pid)

    wait_until(restarted, 20, "the replica to restart")
    server.admin.wait_model_ready("counting", "1")
    again = events_of(server, "counting", max_pieces=2)
    assert [name for _, name, _ in again] == ["", "", "end"]
