"""Admission control on the query path: a query its model version cannot answer by its
deadline is refused at once, as the app's default output or as Overloaded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from clipper.core.exceptions import Overloaded
from clipper.core.records import ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType, ModelId
from clipper.dataplane.dataplane import Answers, DataPlane
from clipper.rpc.protocol import BatchReply
from tests.unit.dataplane.test_model_serving import FakeWorker, buffer, snapshot

MODEL_ID = ModelId("m", "1")
REFUSED = (
    "Server overloaded: m:1 could not answer within the latency SLO (100 ms); query refused at once"
)


def ignore(answers: Answers) -> None:
    """The callback of a query whose answers no test reads."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_version(base: RegistrySnapshot, **fields: object) -> RegistrySnapshot:
    version = replace(ModelVersionRecord("m", "1", InputType.DOUBLES, batch_size=1), **fields)
    return replace(base, versions={MODEL_ID: version})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def plane(clock: FakeClock) -> AsyncIterator[DataPlane]:
    dataplane = DataPlane(clock=clock)
    dataplane.apply(with_version(snapshot()))
    yield dataplane
    for removed in dataplane.apply(RegistrySnapshot()):
        await removed.close()


async def busy_after_a_50ms_batch(plane: DataPlane, clock: FakeClock) -> FakeWorker:
    """One replica whose batch took 50 ms, now holding the next one."""
    worker = FakeWorker(plane.attach, plane.detach)
    worker.register()
    first = asyncio.ensure_future(plane.predict("app", [buffer(1.0)], None, clock() + 60))
    batch = await worker.next_batch()
    clock.now += 0.05
    worker.answer(BatchReply(batch.id, [1]))
    await first
    plane.predict_then("app", [buffer(2.0)], None, clock() + 60, None, ignore)
    await worker.next_batch()  # in flight: no free slot
    return worker


async def test_a_cold_version_admits(plane: DataPlane, clock: FakeClock) -> None:
    serving = plane.serving(MODEL_ID)
    assert serving is not None
    assert serving.admission.admits(1000, clock() + 0.001)


async def test_a_query_that_cannot_make_its_deadline_gets_the_default_at_once(
    plane: DataPlane, clock: FakeClock
) -> None:
    await busy_after_a_50ms_batch(plane, clock)

    # It waits for the batch in flight, then its own: 100 ms, past an 80 ms deadline.
    answers = plane.predict_then("app", [buffer(3.0)], None, clock() + 0.08, None, ignore)

    assert answers is not None
    [prediction] = answers
    assert (prediction.output, prediction.is_default) == (-1, True)
    assert prediction.explanation == REFUSED
    # A query with time enough is queued.
    assert plane.predict_then("app", [buffer(4.0)], None, clock() + 0.2, None, ignore) is None


async def test_an_app_that_rejects_raises_overloaded(plane: DataPlane, clock: FakeClock) -> None:
    await busy_after_a_50ms_batch(plane, clock)
    base = snapshot()
    rejecting = replace(base, apps={"app": replace(base.apps["app"], overload="reject")})
    plane.apply(with_version(rejecting))

    with pytest.raises(Overloaded, match="could not answer") as refused:
        plane.predict_then("app", [buffer(3.0)], None, clock() + 0.08, None, ignore)

    assert refused.value.retry_after_s >= 1.0


async def test_a_cached_app_refuses_through_its_computations(
    plane: DataPlane, clock: FakeClock
) -> None:
    await busy_after_a_50ms_batch(plane, clock)

    answers = await plane.predict("app", [buffer(5.0), buffer(6.0)], None, clock() + 0.08)

    assert [p.explanation for p in answers] == [REFUSED, REFUSED]


async def test_an_explicit_bound_refuses_a_full_queue(plane: DataPlane, clock: FakeClock) -> None:
    plane.apply(with_version(snapshot(), max_queued=2))
    await busy_after_a_50ms_batch(plane, clock)
    for value in (7.0, 8.0):
        plane.predict_then("app", [buffer(value)], None, clock() + 60, None, ignore)

    [prediction] = await plane.predict("app", [buffer(9.0)], None, clock() + 60)

    assert prediction.explanation == (
        "Server overloaded: the queue of m:1 is full (2 queued); query refused at once"
    )
