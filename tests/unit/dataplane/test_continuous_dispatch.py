"""ModelServing's side of continuous batching: one query per batch to a replica that
registered `max_sequences`, as many in flight as its running batch's limit, and the limit
learnt from the `step` messages (the seam: a fake worker over a recording transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clipper.core.types import InputType
from clipper.dataplane.model_serving import BatchPolicy, ModelServing
from clipper.rpc.protocol import Batch, Register, Stepped, StreamEnd, encode_message
from tests.unit.dataplane.test_model_serving import MODEL_ID, FakeWorker, submit, values

SLO_S = 0.3  # a step's target: SLO_S / 3 * 0.9 = 90 ms
FAST_US = 1_000
SLOW_US = 200_000


@pytest.fixture
async def serving() -> AsyncIterator[ModelServing]:
    model_serving = ModelServing(MODEL_ID, InputType.DOUBLES, BatchPolicy(slo_s=SLO_S))
    yield model_serving
    await model_serving.close()


def continuous_replica(serving: ModelServing, max_sequences: int = 8) -> FakeWorker:
    worker = FakeWorker(lambda channel, reg: serving.attach(reg.replica, channel), serving.detach)
    register = Register("m", "1", 0, "doubles", pid=4242, max_sequences=max_sequences)
    worker.channel.data_received(encode_message(register))
    return worker


def step(worker: FakeWorker, size: int, latency_us: int) -> None:
    worker.channel.data_received(encode_message(Stepped(size, latency_us)))


async def batches(worker: FakeWorker, count: int) -> list[Batch]:
    return [await worker.next_batch() for _ in range(count)]


async def nothing_sent(worker: FakeWorker) -> bool:
    await asyncio.sleep(0.05)
    return worker.transport.received.empty()


async def test_each_query_goes_alone_and_more_join_as_fast_steps_double_the_limit(
    serving: ModelServing,
) -> None:
    worker = continuous_replica(serving)
    for value in range(6):
        submit(serving, float(value))

    [first] = await batches(worker, 1)  # the limit starts at one sequence
    assert values(first) == [0.0]
    assert await nothing_sent(worker)
    step(worker, 1, FAST_US)  # a full step under the target: the limit doubles
    assert [values(batch) for batch in await batches(worker, 1)] == [[1.0]]
    step(worker, 2, FAST_US)
    assert [values(batch) for batch in await batches(worker, 2)] == [[2.0], [3.0]]
    assert serving.replicas[0].in_flight == 4  # every batch still streams


async def test_a_slow_step_shrinks_the_limit_and_a_sequence_that_ends_frees_its_seat(
    serving: ModelServing,
) -> None:
    worker = continuous_replica(serving)
    futures = [future for value in range(4) for future in submit(serving, float(value))]
    [first] = await batches(worker, 1)
    step(worker, 1, FAST_US)
    await batches(worker, 1)
    step(worker, 2, SLOW_US)  # over the target: 2 * 0.9 -> 1, and no more doubling
    assert serving.replicas[0].sizer.size == 1
    worker.channel.data_received(encode_message(StreamEnd(first.id, 1)))
    assert await futures[0] == []  # its pieces joined (none sent here)
    assert await nothing_sent(worker)  # one still runs: at the limit of one
    step(worker, 1, FAST_US)
    assert serving.replicas[0].sizer.size == 2  # additive from now on
    assert [values(batch) for batch in await batches(worker, 1)] == [[2.0]]


async def test_a_fixed_batch_size_is_the_limit_capped_by_the_models(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=3, slo_s=SLO_S))
    worker = continuous_replica(serving, max_sequences=2)
    for value in range(4):
        submit(serving, float(value))
    assert len(await batches(worker, 2)) == 2
    step(worker, 2, FAST_US)
    assert await nothing_sent(worker)


async def test_the_pieces_of_a_step_reach_each_sequence_in_order(serving: ModelServing) -> None:
    worker = continuous_replica(serving)
    [future] = submit(serving, 1.0)
    [batch] = await batches(worker, 1)
    for piece in ("a", "b"):
        worker.channel.data_received(encode_message(Stepped(1, FAST_US, [[batch.id, 0, piece]])))
    worker.channel.data_received(encode_message(StreamEnd(batch.id, 1)))
    assert await future == "ab"
