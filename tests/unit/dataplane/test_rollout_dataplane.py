"""A model under a canary rollout inside a selection policy's and a pipeline's route, and
feedback reaching the window of the version that answered (in-process fake workers)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType
from clipper.dataplane.dataplane import DataPlane, FeedbackRequest
from clipper.dataplane.rollout_split import RolloutSplit
from clipper.rpc.protocol import Register, encode_message
from clipper.rpc.server import WorkerChannel
from tests.unit.dataplane.test_selection_dataplane import AutoTransport, Model, constant

DOUBLES = InputType.DOUBLES
LATER_S = 5.0


def connect(plane: DataPlane, name: str, version: str, model: Model) -> None:
    """A replica of `name:version` that answers with `model`."""
    transport = AutoTransport(DOUBLES, model)
    channel = transport.channel = WorkerChannel(plane.attach, plane.detach)
    channel.connection_made(transport)
    channel.data_received(encode_message(Register(name, version, 0, DOUBLES.value, pid=1)))


def routed(plane: DataPlane, policy: str, pipeline: tuple[str, ...] = ()) -> RolloutSplit:
    """App `app` over models `a` (versions 1 and 2, under a rollout sending all of its
    queries to 2) and `b`; a pipeline `a` -> `b`, or an app linked to both."""
    app = AppRecord("app", DOUBLES, "-1", 100_000, policy, True, {}, pipeline)
    versions = [ModelVersionRecord("a", v, DOUBLES, output_type=DOUBLES) for v in ("1", "2")]
    versions.append(ModelVersionRecord("b", "1", DOUBLES))
    plane.apply(
        RegistrySnapshot(
            apps={"app": app},
            versions={version.model_id: version for version in versions},
            current_versions={"a": "1", "b": "1"},
            links={"app": () if pipeline else ("a", "b")},
        )
    )
    connect(plane, "a", "1", constant(np.array([1.0])))
    connect(plane, "a", "2", constant(np.array([2.0])))
    connect(plane, "b", "1", (lambda xs: [float(x[0]) for x in xs]) if pipeline else constant(9.0))
    split = RolloutSplit("a", "1", "2")
    split.enter_step(1.0, False)
    plane.start_split(split)
    return split


@pytest.fixture
async def plane() -> AsyncIterator[DataPlane]:
    dataplane = DataPlane()
    yield dataplane
    for removed in dataplane.apply(RegistrySnapshot()):
        await removed.close()


async def predict(plane: DataPlane) -> Any:
    buffers = [np.float64(1.0).tobytes()]
    [prediction] = await plane.predict("app", buffers, None, time.monotonic() + LATER_S)
    return prediction


async def test_a_policy_asks_the_rolled_model_through_its_split(plane: DataPlane) -> None:
    split = routed(plane, "exp4")

    prediction = await predict(plane)
    reply = await plane.update("app", FeedbackRequest(prediction.query_id, reward=0.25))

    assert set(prediction.models) == {"a:2", "b:1"}
    assert split.canary_window.queries == 1
    assert (split.canary_window.rewarded, split.canary_window.mean_reward) == (1, 0.25)
    assert split.baseline_window.rewarded == 0
    assert reply["rewards"]["a:2"] == 0.25  # named by the version that answered
    buffer = np.float64(3.0).tobytes()
    labelled = FeedbackRequest(buffer=buffer, label=2.0, has_label=True)
    await plane.update("app", labelled)  # the input form: asks a, through the split again
    assert split.canary_window.rewarded == 2


async def test_a_pipeline_step_takes_the_split_and_its_feedback(plane: DataPlane) -> None:
    split = routed(plane, "single", ("a", "b"))

    prediction = await predict(plane)
    await plane.update("app", FeedbackRequest(prediction.query_id, reward=0.5))

    assert (prediction.output, prediction.models) == (2.0, ("a:2", "b:1"))
    assert (split.canary_window.rewarded, split.canary_window.reward_sum) == (1, 0.5)


async def test_a_plain_app_remembers_its_answers_under_a_rollout_only(plane: DataPlane) -> None:
    app = AppRecord("app", DOUBLES, "-1", 100_000, "single", True, {}, ())
    versions = [ModelVersionRecord("a", v, DOUBLES) for v in ("1", "2")]
    plane.apply(RegistrySnapshot(apps={"app": app}, current_versions={"a": "1"},
                                 versions={v.model_id: v for v in versions},
                                 links={"app": ("a",)}))  # fmt: skip
    connect(plane, "a", "1", constant(1.0))
    connect(plane, "a", "2", constant(2.0))
    before = await predict(plane)
    split = RolloutSplit("a", "1", "2")
    split.enter_step(1.0, False)
    plane.start_split(split)

    during = await predict(plane)
    ignored = await plane.update("app", FeedbackRequest(before.query_id, reward=1.0))
    await plane.update("app", FeedbackRequest(during.query_id, reward=0.0))

    assert (before.output, during.output) == (1.0, 2.0)
    assert ignored["rewards"] == {}
    assert (split.canary_window.rewarded, split.canary_window.mean_reward) == (1, 0.0)
