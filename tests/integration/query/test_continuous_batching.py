"""Continuous batching of step models through a real server and worker (issue 24, item 3).

The model sleeps STEP_S per step and writes one line per step to a log: the labels of the
sequences the step advanced. Queries stream over Server-Sent Events, from threads.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until
from tests.integration.query.test_streaming import read_events

STEP_S = 0.03


class LoggedSteps:
    """A step model: input [label, pieces, crash_at, raise_at]; each step logs the labels it
    ran; the process exits at a sequence's step `crash_at`, the step raises at its step
    `raise_at` (-1 or absent: never)."""

    max_sequences = 16

    def __init__(self, log: str) -> None:
        self.log = log

    def start(self, value: Any) -> dict[str, int]:
        crash_at, raise_at = (int(at) for at in [*value[2:], -1, -1][:2])
        state = {"label": int(value[0]), "pieces": int(value[1]), "n": 0}
        return {**state, "crash_at": crash_at, "raise_at": raise_at}

    def step(self, states: list[dict[str, int]]) -> list[tuple[str, bool]]:
        time.sleep(STEP_S)
        with open(self.log, "a") as log:
            log.write(" ".join(str(state["label"]) for state in states) + "\n")
        results = []
        for state in states:
            if state["n"] == state["crash_at"]:
                os._exit(17)  # a crash mid-step
            if state["n"] == state["raise_at"]:
                raise ValueError(f"sequence {state['label']} failed")
            state["n"] += 1
            results.append((f"{state['label']}.{state['n']} ", state["n"] >= state["pieces"]))
        return results


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("continuous")


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, logs: Path) -> ServerHandle:
    handle = module_server("continuous")
    deploy(handle, "steps", LoggedSteps(str(logs / "steps")))
    deploy(handle, "capped", LoggedSteps(str(logs / "capped")), batch_size=2)
    deploy(handle, "crashy", LoggedSteps(str(logs / "crashy")))
    return handle


def step_lines(log: Path, labels: set[int]) -> list[set[int]]:
    """Each logged step's labels, for the steps that ran any of `labels`."""
    steps = [{int(label) for label in line.split()} for line in log.read_text().splitlines()]
    return [step for step in steps if step & labels]


def open_stream(client: httpx.Client, server: ServerHandle, app: str, value: list[float]) -> Any:
    body = {"input": value, "stream": True}
    return client.stream("POST", f"{server.query_url}/{app}/predict", json=body)


def stream_all(server: ServerHandle, app: str, value: list[float]) -> list[tuple[float, str, Any]]:
    with httpx.Client(timeout=20) as client, open_stream(client, server, app, value) as response:
        assert response.status_code == 200
        return list(read_events(response))


def in_threads(server: ServerHandle, app: str, values: list[list[float]]) -> list[list[Any]]:
    """Stream every value at once, one thread each; each stream's events."""
    results: list[list[Any]] = [[] for _ in values]

    def run(index: int) -> None:
        results[index] = stream_all(server, app, values[index])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(values))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def in_background(server: ServerHandle, app: str, value: list[float]) -> tuple[Any, list[Any]]:
    """Start streaming `value` on a thread: (the thread, started; the list its events fill)."""
    received: list[Any] = []
    thread = threading.Thread(target=lambda: received.extend(stream_all(server, app, value)))
    thread.start()
    return thread, received


def pieces_of(stream: list[tuple[float, str, Any]]) -> list[str]:
    return [data for _, name, data in stream if name == ""]


def test_a_later_query_joins_and_finishes_before_an_earlier_long_one(
    server: ServerHandle, logs: Path
) -> None:
    later: list[Any] = []
    with httpx.Client(timeout=20) as client, open_stream(client, server, "steps", [1, 30]) as reply:
        earlier = []
        for item in read_events(reply):
            earlier.append(item)
            if len(earlier) == 2:  # the long sequence is running: the short one joins it
                thread, later = in_background(server, "steps", [2, 3])
    thread.join(timeout=20)
    assert pieces_of(earlier) == [f"1.{n} " for n in range(1, 31)]
    assert pieces_of(later) == ["2.1 ", "2.2 ", "2.3 "]
    assert later[-1][1] == "end"
    assert later[-1][2]["output"] == "2.1 2.2 2.3 "
    last_long_piece = earlier[-2][0]
    assert later[0][0] < last_long_piece  # its first piece came while the long one ran
    assert later[-1][0] < last_long_piece  # and it was done before the long one
    shared = [step for step in step_lines(logs / "steps", {1, 2}) if step == {1, 2}]
    assert len(shared) == 3  # every step of the short one also advanced the long one


def test_concurrent_streams_advance_in_batched_steps(server: ServerHandle, logs: Path) -> None:
    labels = list(range(10, 16))
    streams = in_threads(server, "steps", [[label, 12] for label in labels])
    for label, stream in zip(labels, streams, strict=True):
        assert pieces_of(stream) == [f"{label}.{n} " for n in range(1, 13)]
        assert stream[-1][2]["default"] is False
    steps = step_lines(logs / "steps", set(labels))
    assert max(len(step) for step in steps) == len(labels)  # the limit grew to all of them
    assert len(steps) <= 12 * len(labels) // 2  # far fewer steps than pieces


def test_a_fixed_batch_size_caps_the_running_batch(server: ServerHandle, logs: Path) -> None:
    labels = [20, 21, 22, 23]
    streams = in_threads(server, "capped", [[label, 4] for label in labels])
    assert [len(pieces_of(stream)) for stream in streams] == [4] * len(labels)
    steps = step_lines(logs / "capped", set(labels))
    assert max(len(step) for step in steps) == 2


def test_a_plain_query_gets_the_pieces_joined(server: ServerHandle) -> None:
    reply = httpx.post(f"{server.query_url}/steps/predict", json={"input": [5, 3]}, timeout=10)
    assert reply.status_code == 200
    assert reply.json()["output"] == "5.1 5.2 5.3 "


def test_a_cancelled_sequence_leaves_within_a_step_and_its_neighbour_runs_on(
    server: ServerHandle, logs: Path
) -> None:
    thread, neighbour = in_background(server, "steps", [31, 20])
    received = 0
    with httpx.Client(timeout=20) as client, open_stream(client, server, "steps", [30, 40]) as r:
        for _, name, _ in read_events(r):
            received += name == ""
            if received == 2:
                break  # leaving the block closes the connection mid-stream
    thread.join(timeout=20)
    assert pieces_of(neighbour) == [f"31.{n} " for n in range(1, 21)]
    ran = len(step_lines(logs / "steps", {30}))
    assert ran <= received + 2  # the step in progress, and one while the cancel travels


def test_a_crash_mid_step_ends_every_stream_of_the_batch_and_the_replica_restarts(
    server: ServerHandle, logs: Path
) -> None:
    thread, survivor = in_background(server, "crashy", [41, 40])
    wait_until(lambda: step_lines(logs / "crashy", {41}) if (logs / "crashy").exists() else [],
               10, "the first sequence running")  # fmt: skip
    crashed = stream_all(server, "crashy", [40, 40, 3])
    thread.join(timeout=20)
    for stream in (crashed, survivor):
        assert len(pieces_of(stream)) < 40
        (_, name, final) = stream[-1]
        assert (name, final["code"]) == ("error", "ReplicaCrashed")  # the crash ended it
    assert len(pieces_of(crashed)) == 3
    steps = step_lines(logs / "crashy", {40})
    assert any(step == {40, 41} for step in steps)  # they were in one running batch

    def answered() -> bool:
        body = {"input": [42, 2]}
        reply = httpx.post(f"{server.query_url}/crashy/predict", json=body, timeout=10)
        return bool(reply.json().get("output") == "42.1 42.2 ")

    wait_until(answered, 60, "the restarted replica's answer", interval_s=0.25)


def test_a_step_that_raises_ends_the_streams_in_it_and_the_worker_serves_on(
    server: ServerHandle, logs: Path
) -> None:
    thread, neighbour = in_background(server, "steps", [51, 30])
    wait_until(lambda: step_lines(logs / "steps", {51}), 10, "the first sequence running")
    failed = stream_all(server, "steps", [50, 30, -1, 2])
    thread.join(timeout=20)
    assert pieces_of(failed) == ["50.1 ", "50.2 "]
    for stream in (failed, neighbour):
        (_, name, final) = stream[-1]
        assert (name, final["code"]) == ("error", "ModelError")
        assert len(pieces_of(stream)) < 30
    reply = httpx.post(f"{server.query_url}/steps/predict", json={"input": [52, 2]}, timeout=10)
    assert reply.json()["output"] == "52.1 52.2 "
