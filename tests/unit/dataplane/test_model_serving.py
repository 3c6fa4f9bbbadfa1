"""The query path from DataPlane through ModelServing to a replica's WorkerChannel.

The seam is the channel's transport: a fake one decodes what the server writes as a worker
would, and the test answers by feeding frames to `channel.data_received`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from clipper.batching.queue import PendingQuery
from clipper.core.exceptions import (
    DeadlineExceeded,
    ModelError,
    ReplicaCrashed,
    UnknownApplication,
    UnknownVersion,
)
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType, ModelId
from clipper.dataplane.dataplane import NO_MODELS, SLO_MISSED, DataPlane
from clipper.dataplane.model_serving import BatchPolicy, ModelServing
from clipper.rpc.protocol import (
    Batch,
    BatchError,
    BatchReply,
    FrameDecoder,
    Message,
    Refused,
    Register,
    Welcome,
    decode_inputs,
    encode_batch,
    encode_message,
)
from clipper.rpc.server import RegisterHandler, WorkerChannel

MODEL_ID = ModelId("m", "1")
LATER = 60.0  # seconds: a deadline no test reaches


class RecordingTransport(asyncio.Transport):
    """Decodes every frame the server writes, as the worker would."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder = FrameDecoder()
        self.received: asyncio.Queue[Message] = asyncio.Queue()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        for message in self.decoder.feed(bytes(data)):
            self.received.put_nowait(message)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class FakeWorker:
    """A WorkerChannel over a recording transport, driven from the worker's side."""

    def __init__(self, on_register: RegisterHandler, on_lost: Any) -> None:
        self.transport = RecordingTransport()
        self.channel = WorkerChannel(on_register, on_lost)
        self.channel.connection_made(self.transport)

    def register(self, replica: int = 0, version: str = "1") -> None:
        register = Register("m", version, replica, "doubles", pid=4242)
        self.channel.data_received(encode_message(register))

    async def next_message(self) -> Message:
        return await asyncio.wait_for(self.transport.received.get(), timeout=2)

    async def next_batch(self) -> Batch:
        while not isinstance(message := await self.next_message(), Batch):
            pass
        return message

    def answer(self, message: BatchReply | BatchError) -> None:
        self.channel.data_received(encode_message(message))

    def crash(self) -> None:
        self.channel.connection_lost(ConnectionResetError("worker died"))


def buffer(value: float) -> bytes:
    return np.float64(value).tobytes()


def values(batch: Batch) -> list[float]:
    return [
        float(x[0]) for x in decode_inputs(InputType.DOUBLES, batch.lens, memoryview(batch.body))
    ]


def submit(serving: ModelServing, *inputs: float, deadline_s: float = LATER) -> list[Any]:
    """Queue the inputs as one request; return their computation futures."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + deadline_s
    queries = [
        PendingQuery(i, buffer(x), deadline, loop.create_future()) for i, x in enumerate(inputs)
    ]
    serving.submit(queries)
    return [query.future for query in queries]


@pytest.fixture
async def serving() -> AsyncIterator[ModelServing]:
    model_serving = ModelServing(MODEL_ID, InputType.DOUBLES, BatchPolicy())
    yield model_serving
    await model_serving.close()


def replica_of(serving: ModelServing, replica: int = 0) -> FakeWorker:
    worker = FakeWorker(lambda channel, reg: serving.attach(reg.replica, channel), serving.detach)
    worker.register(replica)
    return worker


async def test_a_query_is_sent_to_the_replica_as_a_batch_frame(serving: ModelServing) -> None:
    worker = replica_of(serving)

    submit(serving, 1.5)
    batch = await worker.next_batch()

    assert (batch.input_type, values(batch)) == ("doubles", [1.5])
    assert 0 < batch.budget_us <= LATER * 1e6


async def test_a_batch_reply_resolves_the_query(serving: ModelServing) -> None:
    worker = replica_of(serving)
    [future] = submit(serving, 1.5)

    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["yes"]))

    assert await future == "yes"


async def test_a_batch_error_fails_every_query_with_model_error(serving: ModelServing) -> None:
    serving.set_policy(BatchPolicy(batch_size=2))
    worker = replica_of(serving)
    futures = submit(serving, 1.0, 2.0)

    batch = await worker.next_batch()
    worker.answer(BatchError(batch.id, "ValueError", "boom"))

    for future in futures:
        with pytest.raises(ModelError, match="ValueError: boom"):
            await future


async def test_inputs_the_worker_skipped_fail_with_deadline_exceeded(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=2))
    worker = replica_of(serving)
    skipped, answered = submit(serving, 1.0, 2.0)

    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["second"], expired=[0]))

    assert await answered == "second"
    with pytest.raises(DeadlineExceeded):
        await skipped


async def test_a_query_expired_in_the_queue_is_dropped_counted_and_never_sent(
    serving: ModelServing,
) -> None:
    [expired] = submit(serving, 1.0, deadline_s=-1.0)
    submit(serving, 2.0)

    batch = await replica_of(serving).next_batch()

    assert values(batch) == [2.0]
    assert serving.dropped_expired == 1
    with pytest.raises(DeadlineExceeded):
        await expired


async def test_connection_lost_fails_batches_in_flight_with_replica_crashed() -> None:
    worker = FakeWorker(lambda channel, reg: None, lambda channel: None)
    worker.register()
    outcome = worker.channel.send_batch(1, encode_batch(1, "doubles", 1000, [buffer(1.0)]))

    worker.crash()

    with pytest.raises(ReplicaCrashed, match="m:1:0 crashed with the batch in flight"):
        await outcome


async def test_a_crashed_query_is_retried_once_then_fails_with_replica_crashed(
    serving: ModelServing,
) -> None:
    first = replica_of(serving, replica=0)
    [future] = submit(serving, 1.5)
    await first.next_batch()
    first.crash()

    second = replica_of(serving, replica=1)
    assert values(await second.next_batch()) == [1.5]
    second.crash()

    with pytest.raises(ReplicaCrashed):
        await future
    assert serving.ready_replicas == 0


async def test_a_fixed_batch_size_of_9_sends_9_then_9_then_2_distinct_inputs(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=9))
    futures = [future for i in range(20) for future in submit(serving, float(i))]
    worker = replica_of(serving)

    sent = []
    for _ in range(3):
        batch = await worker.next_batch()
        sent.append(values(batch))
        worker.answer(BatchReply(batch.id, [f"out-{x:g}" for x in values(batch)]))

    assert [len(inputs) for inputs in sent] == [9, 9, 2]
    assert sorted(x for inputs in sent for x in inputs) == [float(i) for i in range(20)]
    assert await asyncio.gather(*futures) == [f"out-{i}" for i in range(20)]


# -- DataPlane ------------------------------------------------------------------------


def snapshot(linked: bool = True, show_model_errors: bool = False) -> RegistrySnapshot:
    app = AppRecord(
        "app",
        InputType.DOUBLES,
        default_output="-1",
        latency_slo_us=100_000,
        show_model_errors=show_model_errors,
    )
    version = ModelVersionRecord("m", "1", InputType.DOUBLES)
    return RegistrySnapshot(
        apps={"app": app},
        versions={version.model_id: version},
        current_versions={"m": "1"},
        links={"app": ("m",)} if linked else {},
    )


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    plane = DataPlane()
    plane.apply(snapshot())
    yield plane
    for removed in plane.apply(RegistrySnapshot()):
        await removed.close()


def replica_for(plane: DataPlane, version: str = "1") -> FakeWorker:
    worker = FakeWorker(plane.attach, plane.detach)
    worker.register(version=version)
    return worker


async def predict(
    plane: DataPlane, *inputs: float, version: str | None = None, deadline_s: float = LATER
) -> Any:
    deadline = time.monotonic() + deadline_s
    return await plane.predict("app", [buffer(x) for x in inputs], version, deadline)


async def test_an_app_without_a_linked_model_gets_the_default(dataplane: DataPlane) -> None:
    dataplane.apply(snapshot(linked=False))

    [prediction] = await predict(dataplane, 1.0)

    assert (prediction.output, prediction.is_default) == (-1, True)
    assert prediction.explanation == "No connected models found for query"
    assert prediction.explanation == NO_MODELS


async def test_a_silent_replica_gives_the_default_once_the_deadline_passes(
    dataplane: DataPlane,
) -> None:
    worker = replica_for(dataplane)

    [prediction] = await predict(dataplane, 1.0, deadline_s=0.02)

    assert (prediction.output, prediction.is_default) == (-1, True)
    assert prediction.explanation == (
        "Failed to retrieve a prediction response within the specified latency SLO"
    )
    assert prediction.explanation == SLO_MISSED
    assert values(await worker.next_batch()) == [1.0]


async def test_an_unknown_version_is_refused(dataplane: DataPlane) -> None:
    expected = "Requested version: 9 does not exist for model: m"

    with pytest.raises(UnknownVersion, match=re.escape(expected)):
        await predict(dataplane, 1.0, version="9")


async def test_an_unknown_application_is_refused(dataplane: DataPlane) -> None:
    with pytest.raises(UnknownApplication, match="'nope'"):
        await dataplane.predict("nope", [buffer(1.0)], None, time.monotonic() + LATER)


async def test_a_replica_answer_becomes_the_prediction(dataplane: DataPlane) -> None:
    worker = replica_for(dataplane)
    pending = asyncio.create_task(predict(dataplane, 2.0))

    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, [42]))

    [prediction] = await pending
    assert (prediction.output, prediction.is_default, prediction.explanation) == (42, False, None)


async def test_a_model_error_becomes_the_default_with_the_reason(dataplane: DataPlane) -> None:
    worker = replica_for(dataplane)
    pending = asyncio.create_task(predict(dataplane, 2.0))

    batch = await worker.next_batch()
    worker.answer(BatchError(batch.id, "ValueError", "boom"))

    [prediction] = await pending
    assert (prediction.output, prediction.explanation) == (
        -1,
        f"Model error: ValueError raised by m:1 (its message is in the server log, "
        f"query {prediction.query_id})",
    )


async def test_an_app_that_shows_model_errors_gets_the_message(dataplane: DataPlane) -> None:
    dataplane.apply(snapshot(show_model_errors=True))
    worker = replica_for(dataplane)
    pending = asyncio.create_task(predict(dataplane, 2.0))

    batch = await worker.next_batch()
    worker.answer(BatchError(batch.id, "ValueError", "boom"))

    [prediction] = await pending
    assert (prediction.output, prediction.explanation) == (-1, "Model error: ValueError: boom")


async def test_a_reply_with_the_wrong_number_of_outputs_fails_every_query(
    dataplane: DataPlane,
) -> None:
    worker = replica_for(dataplane)
    pending = asyncio.create_task(predict(dataplane, 1.0, deadline_s=5))

    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["one", "too many"]))

    [prediction] = await pending
    assert (prediction.output, prediction.is_default) == (-1, True)
    assert prediction.explanation == "ReplicaError: 2 outputs for 1 inputs"


async def test_a_repeated_input_is_answered_from_the_cache(dataplane: DataPlane) -> None:
    worker = replica_for(dataplane)
    first = asyncio.create_task(predict(dataplane, 3.0))
    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["cached"]))
    await first

    [prediction] = await predict(dataplane, 3.0, deadline_s=2)

    assert (prediction.output, prediction.is_default) == ("cached", False)
    assert worker.transport.received.empty()


async def test_queries_follow_the_current_version_of_each_new_snapshot(
    dataplane: DataPlane,
) -> None:
    two = snapshot()
    second = ModelVersionRecord("m", "2", InputType.DOUBLES)
    two = replace(two, versions={**two.versions, second.model_id: second},
                  current_versions={"m": "2"})  # fmt: skip
    dataplane.apply(two)
    old, new = replica_for(dataplane, version="1"), replica_for(dataplane, version="2")
    pending = asyncio.create_task(predict(dataplane, 5.0))

    batch = await new.next_batch()
    new.answer(BatchReply(batch.id, ["from 2"]))

    [prediction] = await pending
    assert (prediction.output, prediction.models) == ("from 2", ("m:2",))
    assert not any(isinstance(m, Batch) for m in drain(old.transport.received))


async def test_a_snapshot_that_turns_the_cache_off_asks_the_model_again(
    dataplane: DataPlane,
) -> None:
    worker = replica_for(dataplane)
    first = asyncio.create_task(predict(dataplane, 3.0))
    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["first"]))
    await first
    uncached = snapshot()
    dataplane.apply(replace(uncached, apps={"app": replace(uncached.apps["app"],
                                                           cache_enabled=False)}))  # fmt: skip

    second = asyncio.create_task(predict(dataplane, 3.0))
    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["second"]))

    assert [p.output for p in await second] == ["second"]


def uncached(plane: DataPlane) -> None:
    """The app with its cache off: each input is a computation of its own."""
    app = snapshot().apps["app"]
    plane.apply(replace(snapshot(), apps={"app": replace(app, cache_enabled=False)}))


async def test_an_answer_that_fails_does_not_hold_up_the_rest_of_its_batch(
    dataplane: DataPlane, caplog: pytest.LogCaptureFixture
) -> None:
    uncached(dataplane)
    serving = dataplane.serving(MODEL_ID)
    assert serving is not None
    serving.set_policy(BatchPolicy(batch_size=2))
    worker = replica_for(dataplane)
    answered: list[Any] = []

    def broken(_: Any) -> None:
        raise RuntimeError("the client's callback broke")

    deadline = time.monotonic() + LATER
    dataplane.predict_then("app", [buffer(1.0)], None, deadline, None, broken)
    dataplane.predict_then("app", [buffer(2.0)], None, deadline, None, answered.append)
    batch = await worker.next_batch()
    assert values(batch) == [1.0, 2.0]
    worker.answer(BatchReply(batch.id, ["one", "two"]))
    await asyncio.sleep(0)  # the batch's outcome is handled; its queries settle in it

    [[prediction]] = answered
    assert (prediction.output, prediction.is_default) == ("two", False)
    assert "the client's callback broke" in caplog.text


async def test_an_uncached_query_gets_the_default_at_its_deadline_and_not_again(
    dataplane: DataPlane,
) -> None:
    uncached(dataplane)
    worker = replica_for(dataplane)
    answered: list[Any] = []
    deadline = time.monotonic() + 0.02

    dataplane.predict_then("app", [buffer(1.0)], None, deadline, None, answered.append)
    batch = await worker.next_batch()
    await asyncio.sleep(0.05)
    [[prediction]] = answered
    assert (prediction.output, prediction.explanation) == (-1, SLO_MISSED)
    worker.answer(BatchReply(batch.id, ["late"]))
    await asyncio.sleep(0)

    assert len(answered) == 1


def drain(queue: asyncio.Queue[Message]) -> list[Message]:
    messages = []
    while not queue.empty():
        messages.append(queue.get_nowait())
    return messages


async def test_a_worker_for_an_unregistered_version_is_refused(dataplane: DataPlane) -> None:
    worker = replica_for(dataplane, version="7")

    refusal = await worker.next_message()

    assert refusal == Refused("model version m:7 is not registered")
    assert worker.transport.closed


async def test_a_registered_worker_is_welcomed_and_makes_the_app_ready(
    dataplane: DataPlane,
) -> None:
    worker = replica_for(dataplane)

    assert await worker.next_message() == Welcome()
    assert dataplane.app_ready("app")


async def test_a_replica_holds_at_most_max_in_flight_batches_least_loaded_first(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=1, max_in_flight=2))
    first, second = replica_of(serving, replica=0), replica_of(serving, replica=1)
    futures = [future for i in range(5) for future in submit(serving, float(i))]

    sent_first = [await first.next_batch(), await first.next_batch()]
    sent_second = [await second.next_batch(), await second.next_batch()]
    await asyncio.sleep(0.01)
    assert first.transport.received.empty()
    assert second.transport.received.empty()

    first.answer(BatchReply(sent_first[0].id, ["a"]))
    fifth = await first.next_batch()  # the freed slot takes the queued query

    assert sorted(values(b)[0] for b in [*sent_first, *sent_second, fifth]) == [0, 1, 2, 3, 4]
    assert await futures[int(values(sent_first[0])[0])] == "a"


async def test_delayed_batching_waits_for_a_full_batch_within_the_window(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=3, wait_timeout_s=5.0))
    worker = replica_of(serving)
    submit(serving, 1.0)
    submit(serving, 2.0)
    await asyncio.sleep(0.05)
    assert worker.transport.received.empty() or not isinstance(await worker.next_message(), Batch)

    submit(serving, 3.0)  # the batch is full: it goes at once, long before the window ends
    batch = await worker.next_batch()

    assert values(batch) == [1.0, 2.0, 3.0]


async def test_delayed_batching_sends_what_it_has_when_the_window_ends(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=8, wait_timeout_s=0.05))
    worker = replica_of(serving)
    started = time.monotonic()
    submit(serving, 1.0, 2.0)

    batch = await worker.next_batch()

    assert values(batch) == [1.0, 2.0]
    assert time.monotonic() - started >= 0.04


async def test_delayed_batching_never_waits_past_the_earliest_deadline(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=8, wait_timeout_s=30.0))
    worker = replica_of(serving)
    started = time.monotonic()
    [future] = submit(serving, 1.0, deadline_s=0.2)

    batch = await worker.next_batch()

    assert values(batch) == [1.0]
    assert time.monotonic() - started < 0.2
    worker.answer(BatchReply(batch.id, ["in time"]))
    assert await future == "in time"


async def test_draining_a_replica_waits_for_its_batch_in_flight(serving: ModelServing) -> None:
    worker = replica_of(serving)
    [future] = submit(serving, 1.0)
    batch = await worker.next_batch()

    drain = asyncio.ensure_future(serving.drain(0, timeout_s=5))
    await asyncio.sleep(0.02)
    assert not drain.done()
    worker.answer(BatchReply(batch.id, ["done"]))
    await asyncio.wait_for(drain, 2)

    assert await future == "done"
    assert serving.ready_replicas == 0


async def test_the_load_counters_count_each_batch_for_the_autoscaler(
    serving: ModelServing,
) -> None:
    serving.set_policy(BatchPolicy(batch_size=2))
    submit(serving, 9.0, deadline_s=-1.0)  # expires in the queue
    futures = submit(serving, 1.0, 2.0)
    worker = replica_of(serving)

    batch = await worker.next_batch()
    worker.answer(BatchReply(batch.id, ["a", "b"]))
    await asyncio.gather(*futures)

    reading = serving.load.reading()
    assert (reading.queries, reading.expired) == (2, 1)
    assert reading.queue_delay_s > 0
    assert reading.busy_s > 0
