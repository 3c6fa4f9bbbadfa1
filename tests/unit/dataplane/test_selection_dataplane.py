"""Selection policies and pipelines in the DataPlane, against in-process fake workers.

A fake worker answers every batch it is sent with `model(inputs)` (a Python function of
the decoded inputs), or never when its function is None (a straggler).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import orjson
import pytest

from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType
from clipper.dataplane.dataplane import DataPlane, FeedbackRequest
from clipper.rpc.protocol import (
    Batch,
    BatchReply,
    FrameDecoder,
    Register,
    decode_inputs,
    encode_message,
)
from clipper.rpc.server import WorkerChannel

Model = Callable[[list[Any]], list[Any]] | None
SOON_S = 0.05  # a deadline that straggling models miss
LATER_S = 5.0


class AutoTransport(asyncio.Transport):
    """Answers each batch frame written to it with the model's outputs, on the next tick."""

    def __init__(self, input_type: InputType, model: Model) -> None:
        super().__init__()
        self.decoder = FrameDecoder()
        self.input_type = input_type
        self.model = model
        self.channel: WorkerChannel | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        for message in self.decoder.feed(bytes(data)):
            if isinstance(message, Batch) and self.model is not None:
                inputs = decode_inputs(self.input_type, message.lens, memoryview(message.body))
                reply = encode_message(BatchReply(message.id, self.model(inputs)))
                assert self.channel is not None
                asyncio.get_running_loop().call_soon(self.channel.data_received, reply)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False


def connect(plane: DataPlane, name: str, input_type: InputType, model: Model) -> None:
    """A replica of `name:1` that answers with `model`."""
    transport = AutoTransport(input_type, model)
    channel = transport.channel = WorkerChannel(plane.attach, plane.detach)
    channel.connection_made(transport)
    channel.data_received(encode_message(Register(name, "1", 0, input_type.value, pid=1)))


def snapshot(
    app: AppRecord, models: dict[str, InputType], outputs: dict[str, InputType] | None = None
) -> RegistrySnapshot:
    outputs = outputs or {}
    versions = [
        ModelVersionRecord(n, "1", t, output_type=outputs.get(n)) for n, t in models.items()
    ]
    return RegistrySnapshot(
        apps={app.name: app},
        versions={version.model_id: version for version in versions},
        current_versions=dict.fromkeys(models, "1"),
        links={app.name: tuple(sorted(name for name in models if name not in app.pipeline))},
    )


def app_record(policy: str = "single", pipeline: tuple[str, ...] = (), **params: Any) -> AppRecord:
    return AppRecord("app", InputType.DOUBLES, "-1", 100_000, policy, True, params, pipeline)


@pytest.fixture
async def plane() -> AsyncIterator[DataPlane]:
    dataplane = DataPlane()
    yield dataplane
    for removed in dataplane.apply(RegistrySnapshot()):
        await removed.close()


def constant(value: Any) -> Model:
    return lambda inputs: [value] * len(inputs)


async def predict(plane: DataPlane, *inputs: float, deadline_s: float = LATER_S, **kw: Any) -> Any:
    buffers = [np.float64(x).tobytes() for x in inputs]
    return await plane.predict("app", buffers, None, time.monotonic() + deadline_s, **kw)


def ensemble(plane: DataPlane, c: Model = None) -> None:
    doubles = InputType.DOUBLES
    plane.apply(snapshot(app_record("exp4"), {"a": doubles, "b": doubles, "c": doubles}))
    connect(plane, "a", doubles, constant(1))
    connect(plane, "b", doubles, constant(1))
    connect(plane, "c", doubles, c)


async def test_a_single_app_names_the_version_that_answered(plane: DataPlane) -> None:
    plane.apply(snapshot(app_record(), {"m": InputType.DOUBLES}))
    connect(plane, "m", InputType.DOUBLES, constant(7))

    [prediction] = await predict(plane, 1.0)

    assert (prediction.output, prediction.models, prediction.partial) == (7, ("m:1",), False)


async def test_an_ensemble_answers_at_the_deadline_with_the_models_that_finished(
    plane: DataPlane,
) -> None:
    ensemble(plane, c=None)
    started = time.monotonic()

    predictions = await predict(plane, 1.0, 2.0, deadline_s=SOON_S)

    assert time.monotonic() - started < SOON_S + 0.05
    assert [(p.output, p.models, p.partial, p.is_default) for p in predictions] == [
        (1, ("a:1", "b:1"), True, False)
    ] * 2


async def test_an_ensemble_whose_models_all_answer_is_not_partial(plane: DataPlane) -> None:
    ensemble(plane, c=constant(2))

    [prediction] = await predict(plane, 1.0)

    assert (prediction.output, prediction.partial) == (1, False)
    assert prediction.models == ("a:1", "b:1", "c:1")


async def test_an_ensemble_with_no_answer_in_time_gives_the_default(plane: DataPlane) -> None:
    doubles = InputType.DOUBLES
    plane.apply(snapshot(app_record("exp4"), {"a": doubles}))
    connect(plane, "a", doubles, None)

    [prediction] = await predict(plane, 1.0, deadline_s=SOON_S)

    assert (prediction.output, prediction.is_default, prediction.models) == (-1, True, ())


async def test_a_query_naming_a_model_version_bypasses_the_policy(plane: DataPlane) -> None:
    ensemble(plane, c=constant(3))
    buffer = np.float64(1.0).tobytes()

    [prediction] = await plane.predict("app", [buffer], "c:1", time.monotonic() + LATER_S)

    assert (prediction.output, prediction.models) == (3, ("c:1",))


def pipeline(plane: DataPlane, featurize: Model) -> None:
    doubles = InputType.DOUBLES
    app = app_record(pipeline=("features", "classify"))
    plane.apply(snapshot(app, {"features": doubles, "classify": doubles}, {"features": doubles}))
    connect(plane, "features", doubles, featurize)
    connect(plane, "classify", doubles, lambda xs: ["big" if x.sum() > 10 else "small" for x in xs])


async def test_a_pipeline_feeds_each_output_to_the_next_step(plane: DataPlane) -> None:
    pipeline(plane, lambda xs: [np.concatenate([x, x * 10]) for x in xs])

    small, big = await predict(plane, 0.5, 2.0)

    assert (small.output, big.output) == ("small", "big")
    assert big.models == ("features:1", "classify:1")


async def test_a_pipeline_step_output_the_next_step_cannot_take_gives_the_default(
    plane: DataPlane,
) -> None:
    pipeline(plane, constant("not numbers"))

    [prediction] = await predict(plane, 1.0)

    assert prediction.is_default
    assert prediction.explanation is not None
    assert prediction.explanation.startswith("Pipeline error")


async def test_feedback_by_query_id_updates_the_policy_and_marks_it_for_saving(
    plane: DataPlane,
) -> None:
    ensemble(plane, c=constant(2))
    [prediction] = await predict(plane, 1.0)

    reply = await plane.update("app", FeedbackRequest(query_id=prediction.query_id, label=2,
                                                      has_label=True))  # fmt: skip

    assert reply["rewards"] == {"a:1": 0.0, "b:1": 0.0, "c:1": 1.0}
    view = plane.policy_view("app")
    assert view is not None
    assert view["c"]["weight"] > view["a"]["weight"]
    saved = plane.take_dirty_states()
    assert orjson.loads(saved["app"])["policy"] == "exp4"
    assert plane.take_dirty_states() == {}


async def test_feedback_with_an_input_asks_every_model(plane: DataPlane) -> None:
    ensemble(plane, c=constant(2))
    request = FeedbackRequest(uid=4, buffer=np.float64(5.0).tobytes(), label=1, has_label=True)

    reply = await plane.update("app", request)

    assert reply["rewards"] == {"a:1": 1.0, "b:1": 1.0, "c:1": 0.0}


async def test_a_reward_goes_to_the_models_that_made_the_reply(plane: DataPlane) -> None:
    doubles = InputType.DOUBLES
    plane.apply(snapshot(app_record("epsilon_greedy", seed=1), {"a": doubles, "b": doubles}))
    connect(plane, "a", doubles, constant(1))
    connect(plane, "b", doubles, constant(2))
    [prediction] = await predict(plane, 1.0)

    reply = await plane.update("app", FeedbackRequest(query_id=prediction.query_id, reward=0.5))

    assert reply["rewards"] == {prediction.models[0]: 0.5}


async def test_shadow_answers_are_recorded_never_returned(plane: DataPlane) -> None:
    doubles = InputType.DOUBLES
    plane.apply(snapshot(app_record("shadow", primary="a"), {"a": doubles, "b": doubles}))
    connect(plane, "a", doubles, constant(1))
    connect(plane, "b", doubles, constant(1))

    [prediction] = await predict(plane, 1.0)
    await asyncio.sleep(0.01)  # the shadow's answer arrives on the next ticks

    assert (prediction.output, prediction.models) == (1, ("a:1",))
    view = plane.policy_view("app")
    assert view is not None
    assert view["b"]["agreement"] == 1.0
    record = plane.query_log.get(prediction.query_id)
    assert record is not None
    assert record.answers == {"a": 1, "b": 1}


async def test_a_policy_keeps_its_learned_state_when_the_registry_changes(
    plane: DataPlane,
) -> None:
    ensemble(plane, c=constant(2))
    [prediction] = await predict(plane, 1.0)
    await plane.update("app", FeedbackRequest(query_id=prediction.query_id, label=2,
                                              has_label=True))  # fmt: skip
    before = plane.policy_view("app")

    doubles = InputType.DOUBLES
    plane.apply(snapshot(app_record("exp4"), {"a": doubles, "b": doubles, "c": doubles}))

    assert plane.policy_view("app") == before
