"""Several query frontends on one machine (issue 26): real processes throughout.

One server with `frontends=2`: both frontends answer (fresh connections spread over them by
the kernel, SO_REUSEPORT), every replica serves both, an admin change reaches both, feedback
on a query reaches the frontend that answered it, /metrics sums them, and a frontend killed
with SIGKILL is back within 2 s while the replicas run on, untouched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from clipper.control.store import Registry
from clipper.core.records import AppRecord
from clipper.core.types import InputType
from clipper.frontends.peer import ask_peer
from clipper.rpc.fanout import frontend_peer_path
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, metric, wait_until

QUERIES = 60


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("frontends", frontends=2)
    deploy(handle, "sum", total)
    return handle


def total(inputs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in inputs]


def doubled(inputs: list[Any]) -> list[float]:
    return [2.0 * float(sum(x)) for x in inputs]


def frontends(server: ServerHandle) -> list[dict[str, Any]]:
    """Each frontend's pid and numbers, from the control process's peer socket."""
    path = frontend_peer_path(server.state_dir, None)
    return list(asyncio.run(ask_peer(path, {"op": "stats"}))["frontends"])


def fresh_predict(server: ServerHandle, app: str, value: float) -> httpx.Response:
    """One query on a new connection (the kernel picks its frontend)."""
    return httpx.post(f"{server.query_url}/{app}/predict", json={"input": [value]}, timeout=10)


def test_both_frontends_answer_and_status_lists_them(server: ServerHandle) -> None:
    before = {row["index"]: row["requests"] for row in frontends(server)}
    replies = [fresh_predict(server, "sum", float(i)) for i in range(QUERIES)]

    assert [r.json()["output"] for r in replies] == [float(i) for i in range(QUERIES)]
    rows = frontends(server)
    assert all(row["requests"] > before[row["index"]] for row in rows), rows
    listed = server.admin.status()["frontends"]
    assert sorted(row["pid"] for row in listed) == sorted(row["pid"] for row in rows)
    assert len({row["pid"] for row in rows} | {server.process.pid}) == 3  # type: ignore[union-attr]


def test_grpc_is_served_by_both_frontends(server: ServerHandle) -> None:
    before = {row["index"]: row["inputs_queued"] for row in frontends(server)}
    outputs = []
    for i in range(QUERIES // 2):
        client = grpcclient.InferenceServerClient(  # its own connection, not gRPC's shared one
            f"127.0.0.1:{server.grpc_port}", channel_args=[("grpc.use_local_subchannel_pool", 1)]
        )
        tensor = grpcclient.InferInput("input", [1, 2], "FP64")
        tensor.set_data_from_numpy(np.array([[float(i), 2.0]]))  # each new: no cache hit
        outputs.append(client.infer("sum", [tensor]).as_numpy("output").tolist())
        client.close()  # the next one opens a new connection: the kernel picks again

    assert outputs == [[i + 2.0] for i in range(QUERIES // 2)]
    rows = frontends(server)
    assert all(row["inputs_queued"] > before[row["index"]] for row in rows), rows


def pieces(inputs: list[Any]) -> Iterator[str]:
    """A streaming model: 3 pieces."""
    for index in range(3):
        time.sleep(0.01)
        yield f"p{index} "


def test_a_streaming_model_streams_through_both_frontends(server: ServerHandle) -> None:
    deploy(server, "pieces", pieces)
    before = {row["index"]: row["inputs_queued"] for row in frontends(server)}
    streams = []
    for i in range(16):  # new connections: both frontends, each a stream on the one worker
        with httpx.stream("POST", f"{server.query_url}/pieces/predict", timeout=10,
                          json={"input": [float(i)], "stream": True}) as response:  # fmt: skip
            streams.append([line for line in response.iter_lines() if line.startswith("data")])

    assert all(len(lines) == 4 for lines in streams), streams  # 3 pieces and the end
    assert all(row["inputs_queued"] > before[row["index"]] for row in frontends(server))


def test_metrics_sum_every_frontend(server: ServerHandle) -> None:
    before = metric(server, "clipper_app_requests_total", app="sum")
    for i in range(QUERIES):
        assert fresh_predict(server, "sum", float(i)).status_code == 200
    after = metric(server, "clipper_app_requests_total", app="sum")

    assert after - before == QUERIES
    assert sum(row["requests"] for row in frontends(server)) >= after


def test_a_registry_change_reaches_both_frontends(server: ServerHandle) -> None:
    deploy(server, "twice", doubled)  # a new app and a new model version
    started = time.monotonic()
    wait_until(
        lambda: all("twice" in row["apps"] and "twice:1" in row["versions"]
                    for row in frontends(server)),
        2.0, "both frontends to see the new app",
    )  # fmt: skip
    server.admin.update_app("twice", latency_slo_micros=500_000)
    replies = [fresh_predict(server, "twice", 2.0) for _ in range(20)]

    assert time.monotonic() - started < 10
    assert {r.json()["output"] for r in replies} == {4.0}  # every frontend has its replica


def test_a_change_written_by_another_process_reaches_both_by_polling(
    server: ServerHandle,
) -> None:
    with Registry.open(server.state_dir) as registry:  # not through the control process
        registry.add_app(AppRecord("polled", InputType.DOUBLES, "-1", 100_000))
    started = time.monotonic()
    wait_until(
        lambda: all("polled" in row["apps"] for row in frontends(server)),
        2.0, "both frontends to read the registry", interval_s=0.02,
    )  # fmt: skip

    assert time.monotonic() - started < 1.0  # FOLLOW_INTERVAL_S (0.1 s), with margin


def test_feedback_reaches_the_frontend_that_answered(server: ServerHandle) -> None:
    deploy(server, "left", total, link=False)
    deploy(server, "right", doubled, link=False)
    server.admin.add_app("judged", "doubles", "-1", 1_000_000, policy="exp4")
    server.admin.add_model_links("judged", ["left", "right"])
    wait_until(lambda: fresh_predict(server, "judged", 1.0).status_code == 200, 5, "judged")
    query_ids = [fresh_predict(server, "judged", 1.0).json()["query_id"] for _ in range(30)]
    updates = [
        httpx.post(
            f"{server.query_url}/judged/update",
            json={"query_id": query_id, "label": 2.0},
            timeout=10,
        )
        for query_id in query_ids
    ]

    assert {query_id % 2 for query_id in query_ids} == {0, 1}  # both frontends answered
    assert [u.status_code for u in updates] == [200] * len(updates), updates[0].text
    assert all(u.json()["query_id"] == q for u, q in zip(updates, query_ids, strict=True))
    assert metric(server, "clipper_policy_feedback_total", app="judged", model="right") == 30


def test_a_killed_frontend_is_back_within_2_s_and_replicas_stay(server: ServerHandle) -> None:
    replicas = sorted(server.replica_pids())
    victim = frontends(server)[0]
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                reply = fresh_predict(server, "sum", 1.0)
                assert reply.status_code == 200, reply.text
                answered[0] += 1
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    back = wait_until(
        lambda: [row for row in frontends(server)
                 if row["index"] == victim["index"] and row["pid"] != victim["pid"]
                 and "requests" in row],
        5.0, "the frontend to be back", interval_s=0.02,
    )  # fmt: skip
    back_after_s = time.monotonic() - killed_at
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(10)

    assert back_after_s < 2.0, back_after_s
    assert back[0]["restarts"] == victim["restarts"] + 1
    assert len(failures) <= len(threads), failures  # at most the queries in flight on it
    assert answered[0] > 20
    assert sorted(server.replica_pids()) == replicas
    wait_until(
        lambda: fresh_predict(server, "sum", 3.0).status_code == 200
        and all(row.get("requests", 0) > 0 for row in frontends(server)),
        5.0, "the new frontend to answer",
    )  # fmt: skip
