"""Streaming models through a real server and worker (issue 24, first slice): pieces as
Server-Sent Events as the model yields them, the SLO on the first piece, cancellation of
the model's generator when the client goes away, and the plain reply of a streaming model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

PIECES = 5
STEP_S = 0.05


def counting_stream(counter: str) -> Callable[[list[Any]], Iterator[str]]:
    """A streaming model: 5 pieces, 50 ms apart, each step counted in `counter`."""

    def stream(inputs: list[Any]) -> Iterator[str]:
        for index in range(PIECES):
            time.sleep(STEP_S)
            with open(counter, "a") as steps:
                steps.write("x")
            yield f"p{index} "

    return stream


def slow_first(inputs: list[Any]) -> Iterator[str]:
    """A streaming model whose first piece comes after 400 ms."""
    time.sleep(0.4)
    yield "late"


def plain(inputs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in inputs]


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streaming") / "steps"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, counter: Path) -> ServerHandle:
    handle = module_server("streaming")
    deploy(handle, "counting", counting_stream(str(counter)))
    deploy(handle, "plain", plain)
    deploy(handle, "late", slow_first, slo_us=100_000)
    return handle


def read_events(response: httpx.Response) -> Iterator[tuple[float, str, Any]]:
    """(arrival time, event name or "", data) per Server-Sent Event."""
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield time.monotonic(), name, orjson.loads(line[len("data: ") :])
            name = ""


def stream_events(server: ServerHandle, app: str, **request: Any) -> list[tuple[float, str, Any]]:
    url = f"{server.query_url}/{app}/predict"
    with httpx.Client(timeout=10) as client, client.stream("POST", url, **request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        return list(read_events(response))


def steps(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


def test_pieces_arrive_as_the_model_yields_them(server: ServerHandle) -> None:
    events = stream_events(server, "counting", json={"input": [1.0], "stream": True})
    pieces = [data for _, name, data in events if name == ""]
    assert pieces == [f"p{index} " for index in range(PIECES)]
    first, last = events[0][0], events[PIECES - 1][0]
    assert last - first >= 3 * STEP_S  # the first came well before the model was done
    (_, name, final) = events[-1]
    assert name == "end"
    assert final["default"] is False
    assert final["models"] == ["counting:1"]
    assert isinstance(final["query_id"], int)
    assert final["output"] == "".join(pieces)


def test_accept_event_stream_streams_without_the_flag(server: ServerHandle) -> None:
    headers = {"accept": "text/event-stream"}
    events = stream_events(server, "counting", json={"input": [1.0]}, headers=headers)
    assert [name for _, name, _ in events] == [""] * PIECES + ["end"]


def test_a_model_that_does_not_stream_answers_one_end_event(server: ServerHandle) -> None:
    events = stream_events(server, "plain", json={"input": [1.0, 2.0], "stream": True})
    assert [(name, data["output"], data["default"]) for _, name, data in events] == [
        ("end", 3.0, False)
    ]


def test_a_plain_query_to_a_streaming_model_gets_the_pieces_joined(server: ServerHandle) -> None:
    reply = httpx.post(f"{server.query_url}/counting/predict", json={"input": [1.0]}, timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["output"] == "p0 p1 p2 p3 p4 "
    assert body["default"] is False


def test_a_missed_first_piece_ends_with_the_default(server: ServerHandle) -> None:
    started = time.monotonic()
    events = stream_events(server, "late", json={"input": [1.0], "stream": True})
    assert time.monotonic() - started < 0.35  # answered at the SLO, not with the piece
    [(_, name, final)] = events
    assert name == "end"
    assert final["default"] is True
    assert final["output"] == -1
    assert final["default_explanation"].startswith("Failed to retrieve a prediction")


def test_a_client_that_goes_away_stops_the_generation(server: ServerHandle, counter: Path) -> None:
    # An earlier stream may still be counting its last step: start from a settled count.
    wait_until(lambda: steps(counter) % PIECES == 0, 5, "earlier streams done")
    before = steps(counter)
    url = f"{server.query_url}/counting/predict"
    received = 0
    body = {"input": [1.0], "stream": True}
    with httpx.Client(timeout=10) as client, client.stream("POST", url, json=body) as response:
        for _ in read_events(response):
            received += 1
            if received == 2:
                break  # leaving the block closes the connection mid-stream
    time.sleep(PIECES * STEP_S + 0.2)  # time for the rest of the model's steps, if it ran on
    assert received == 2
    assert steps(counter) - before <= 3
