"""Cold starts on the query path: a query for a version that may scale to zero and has no
replica asks for one, waits in the queue, and is answered by the replica that attaches, or
by the default with the cold explanation when its deadline comes first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from clipper.core.records import RegistrySnapshot
from clipper.core.types import ModelId
from clipper.dataplane.cold_starts import COLD, ColdStarts, cold_explanation
from clipper.dataplane.dataplane import NO_MODELS, DataPlane
from clipper.rpc.protocol import BatchReply
from tests.unit.dataplane.test_model_serving import FakeWorker, buffer, snapshot

MODEL_ID = ModelId("m", "1")


@pytest.fixture
async def plane() -> AsyncIterator[DataPlane]:
    dataplane = DataPlane()
    dataplane.apply(snapshot())
    dataplane.set_scale_to_zero([MODEL_ID])
    yield dataplane
    for removed in dataplane.apply(RegistrySnapshot()):
        await removed.close()


async def predict(plane: DataPlane, value: float, deadline_s: float) -> asyncio.Future[object]:
    deadline = time.monotonic() + deadline_s
    return asyncio.ensure_future(plane.predict("app", [buffer(value)], None, deadline))


async def test_a_query_at_zero_replicas_asks_for_one_and_is_answered_once_it_attaches(
    plane: DataPlane,
) -> None:
    pending = [await predict(plane, float(x), 10.0) for x in range(3)]
    await asyncio.wait_for(plane.cold_starts.wait(), 2)
    assert plane.cold_starts.take() == {MODEL_ID}
    assert plane.app_ready("app")  # a cold version counts as ready: a query starts it

    worker = FakeWorker(plane.attach, plane.detach)
    worker.register()
    answered = 0
    while answered < 3:  # in one batch or more, as the sizer sends them
        batch = await worker.next_batch()
        worker.answer(BatchReply(batch.id, [7] * len(batch.lens)))
        answered += len(batch.lens)

    for future in pending:
        [prediction] = await asyncio.wait_for(future, 2)
        assert (prediction.output, prediction.is_default) == (7, False)


async def test_the_deadline_before_the_replica_gives_the_cold_explanation(
    plane: DataPlane,
) -> None:
    [prediction] = await asyncio.wait_for(await predict(plane, 1.0, 0.02), 2)

    assert prediction.is_default
    assert prediction.explanation == cold_explanation(MODEL_ID)
    assert prediction.explanation == f"{COLD}: m:1 was scaled to zero; a replica is starting"


async def test_a_version_that_does_not_scale_to_zero_asks_for_nothing(plane: DataPlane) -> None:
    plane.set_scale_to_zero([])

    [prediction] = await asyncio.wait_for(await predict(plane, 1.0, 0.02), 2)

    assert prediction.explanation == NO_MODELS
    assert plane.cold_starts.take() == set()
    assert not plane.app_ready("app")


async def test_a_query_with_a_replica_attached_asks_for_nothing(plane: DataPlane) -> None:
    worker = FakeWorker(plane.attach, plane.detach)
    worker.register()
    pending = await predict(plane, 1.0, 10.0)
    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, [3]))

    await asyncio.wait_for(pending, 2)
    assert plane.cold_starts.take() == set()


async def test_cold_starts_are_collected_once_until_taken() -> None:
    cold = ColdStarts()
    cold.ask(MODEL_ID)
    cold.ask(MODEL_ID)
    await asyncio.wait_for(cold.wait(), 1)
    assert cold.take() == {MODEL_ID}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cold.wait(), 0.01)
