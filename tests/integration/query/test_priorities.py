"""Priorities under contention, through a real server and worker (issue 22, item 4).

Two apps share one model that spends 20 ms per batch of at most 4 (one replica answers
about 200 queries/s within the 100 ms SLO): `gold` at priority 1, `bronze` at 0. Together
they ask about 2.5 times that, open loop; gold's queries are served first and shed last,
so gold keeps its SLO while bronze is shed. A gold query that asks priority 0 in its body
is shed as bronze's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import orjson
import pytest

from clipper.artifacts.python import closure_artifact
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.integration.cluster import ServerFactory, ServerHandle, metric

MODEL = "shared"
GOLD, BRONZE = "gold", "bronze"
SLO_S = 0.1
LOAD_S = 4.0
TICK_S = 0.01  # every tick: 1 gold, 1 gold asking priority 0, 3 bronze (500 queries/s)
CONNECTIONS = 96


def slow_batch(xs: list[Any]) -> list[float]:
    """20 ms per batch, whatever its size (at most 4)."""
    time.sleep(0.02)
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("priorities")
    admin = handle.admin
    admin.add_app(GOLD, "doubles", "-1", int(SLO_S * 1e6), priority=1)
    admin.add_app(BRONZE, "doubles", "-1", int(SLO_S * 1e6))
    admin.upload_artifact(MODEL, "1", closure_artifact(slow_batch))
    admin.add_model(MODEL, "1", "doubles", num_replicas=1, batch_size=4)
    admin.add_model_links(GOLD, [MODEL])
    admin.add_model_links(BRONZE, [MODEL])
    admin.set_cache(False, app_name=GOLD)  # gold takes the uncached path, bronze the cached
    admin.wait_model_ready(MODEL, "1")
    return handle


@dataclass(frozen=True, slots=True)
class Answer:
    """One query as its client saw it."""

    kind: str
    latency_s: float
    status: int
    body: dict[str, Any]

    @property
    def in_slo_from_model(self) -> bool:
        """Answered by the model within the SLO (and a little of the client's own lag)."""
        ok = self.status == 200 and self.body.get("default") is False
        return ok and self.latency_s < SLO_S + 0.03


class Connections:
    """Keep-alive HTTP/1.1 connections, each carrying one request at a time: a client far
    cheaper than httpx, so this process offers the load and the server is what saturates."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def open(self, count: int) -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
            self._all.append(writer)
            self._idle.put_nowait((reader, writer))

    def close(self) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reader, writer = await self._idle.get()
        data = orjson.dumps(body)
        head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(data)}\r\n"
        writer.write(head.encode() + b"content-type: application/json\r\n\r\n" + data)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        reply = await reader.readexactly(length)
        self._idle.put_nowait((reader, writer))
        return int(status_line.split()[1]), orjson.loads(reply)


@contextlib.asynccontextmanager
async def connections(server: ServerHandle) -> AsyncIterator[Connections]:
    pool = Connections(server.query_port)
    await pool.open(CONNECTIONS)
    try:
        yield pool
    finally:
        pool.close()


async def overload(server: ServerHandle) -> list[Answer]:
    """Open loop for LOAD_S: each tick sends its queries whatever the answers."""
    inputs = itertools.count()
    answers: list[Answer] = []

    async def one(pool: Connections, kind: str, app: str, extra: dict[str, Any]) -> None:
        started = time.monotonic()
        status, body = await pool.post(f"/{app}/predict", {"input": [float(next(inputs))], **extra})
        answers.append(Answer(kind, time.monotonic() - started, status, body))

    async with connections(server) as pool:
        sent: list[asyncio.Task[None]] = []
        start = time.monotonic()
        for tick in range(int(LOAD_S / TICK_S)):
            await asyncio.sleep(max(0.0, start + tick * TICK_S - time.monotonic()))
            sent.append(asyncio.ensure_future(one(pool, "gold", GOLD, {})))
            sent.append(asyncio.ensure_future(one(pool, "lowered", GOLD, {"priority": 0})))
            for _ in range(3):
                sent.append(asyncio.ensure_future(one(pool, "bronze", BRONZE, {})))
        await asyncio.wait_for(asyncio.gather(*sent), timeout=30)
    return answers


def share_in_slo(answers: list[Answer], kind: str) -> float:
    mine = [a for a in answers if a.kind == kind]
    return sum(a.in_slo_from_model for a in mine) / len(mine)


def test_the_high_priority_app_keeps_its_slo_while_the_low_one_is_shed(
    server: ServerHandle,
) -> None:
    answers = asyncio.run(overload(server))

    assert {a.status for a in answers} == {200}
    gold = share_in_slo(answers, "gold")
    lowered = share_in_slo(answers, "lowered")
    bronze = share_in_slo(answers, "bronze")
    assert gold > 0.9, (gold, lowered, bronze)
    assert bronze < 0.6, (gold, lowered, bronze)  # the model has room for about 40% of it
    assert lowered < gold - 0.3, (gold, lowered, bronze)  # the body's priority honoured
    shed = [a for a in answers if a.kind == "bronze" and a.body["default"]]
    assert any(a.body["default_explanation"].startswith("Server overloaded") for a in shed)
    refused_low = sum(
        metric(server, "clipper_admission_refused_by_priority_total", priority="0", reason=r)
        for r in ("deadline", "queue_full", "displaced")
    )
    refused_high = sum(
        metric(server, "clipper_admission_refused_by_priority_total", priority="1", reason=r)
        for r in ("deadline", "queue_full", "displaced")
    )
    assert refused_low > 10 * max(1.0, refused_high), (refused_low, refused_high)


def test_the_priority_class_is_kept_and_changed_by_update_app(server: ServerHandle) -> None:
    assert server.admin.get_application(GOLD)["priority"] == 1
    assert server.admin.update_app(BRONZE, priority=3)["priority"] == 3
    assert server.admin.update_app(BRONZE, priority=0)["priority"] == 0
    with pytest.raises(Exception, match="priority must be an integer from 0 to 9"):
        server.admin.update_app(BRONZE, priority=10)


@pytest.mark.parametrize(
    ("body", "headers", "where"),
    [
        ({"input": [1.0], "priority": "high"}, {}, "priority"),
        ({"input": [1.0], "priority": 10}, {}, "priority"),
        ({"input": [1.0]}, {"Clipper-Priority": "-1"}, "Clipper-Priority"),
    ],
)
def test_a_bad_priority_is_400_with_the_error_shape(
    server: ServerHandle, body: dict[str, Any], headers: dict[str, str], where: str
) -> None:
    reply = httpx.post(f"{server.query_url}/{GOLD}/predict", json=body, headers=headers)

    assert reply.status_code == 400
    assert reply.json()["code"] == "InvalidInput"
    assert reply.json()["cause"].startswith(f"{where} must be an integer from 0 to 9")


def test_v2_takes_the_priority_parameter(server: ServerHandle) -> None:
    tensor = {"name": "input", "datatype": "FP64", "shape": [1, 1], "data": [2.0]}
    url = f"{server.query_url}/v2/models/{GOLD}/infer"

    good = httpx.post(url, json={"inputs": [tensor], "parameters": {"priority": 0}})
    bad = httpx.post(url, json={"inputs": [tensor], "parameters": {"priority": "x"}})
    header = httpx.post(
        f"{server.query_url}/{GOLD}/predict",
        json={"input": [3.0]},
        headers={"Clipper-Priority": "0"},
    )

    assert good.status_code == 200
    assert (bad.status_code, bad.json()["code"]) == (400, "InvalidInput")
    assert "the priority parameter must be an integer" in bad.json()["error"]
    assert (header.status_code, header.json()["default"]) == (200, False)


def test_grpc_takes_the_priority_parameter(server: ServerHandle) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP64",
        shape=[1, 1],
        contents=pb.InferTensorContents(fp64_contents=[4.0]),
    )

    def infer(priority: pb.InferParameter) -> pb.ModelInferResponse:
        request = pb.ModelInferRequest(model_name=GOLD, inputs=[tensor])
        request.parameters["priority"].CopyFrom(priority)
        return stub.ModelInfer(request, timeout=10)

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answered = infer(pb.InferParameter(int64_param=0))
        with pytest.raises(grpc.RpcError) as refused:
            infer(pb.InferParameter(string_param="x"))

    assert answered.model_name == GOLD
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the priority parameter must be an integer from 0 to 9" in str(refused.value.details())
