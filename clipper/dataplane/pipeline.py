"""Answering a query of a pipeline app: each step's output is the next step's input.

Every step is a normal model version asked through the computation table (its own
replicas, batching and cache). The query's one deadline is shared by the whole path: a
step that has not answered by then gives the app's default output. An input that fails
at a step (error, deadline, or an output the next step cannot take) leaves the pipeline
with the default output and the reason; the others go on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipper.core.dtypes import NUMERIC_DTYPES
from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import encode_input
from clipper.core.outputs import to_json_value
from clipper.core.types import InputBuffer, InputType
from clipper.dataplane.answers import PredictThen, ask_versions
from clipper.dataplane.computations import NO_MODELS
from clipper.dataplane.model_serving import ModelServing
from clipper.dataplane.policy_path import DefaultAnswer
from clipper.dataplane.prediction import Prediction
from clipper.dataplane.query_log import QueryLog, QueryRecord
from clipper.dataplane.routes import AppRoute

__all__ = ["PipelinePath", "encode_step_output"]


def encode_step_output(output: Any, input_type: InputType) -> bytes:
    """A step's output as the next step's input buffer (InvalidInput if it cannot be)."""
    dtype = NUMERIC_DTYPES.get(input_type)
    kinds = "iu" if input_type is InputType.INTEGERS else "iuf"
    if (
        dtype is not None
        and isinstance(output, np.ndarray)
        and output.ndim == 1
        and output.dtype.kind in kinds
    ):
        return output.astype(dtype, copy=False).tobytes()
    return encode_input(to_json_value(output), input_type)


class PipelinePath:
    """Queries of pipeline apps."""

    def __init__(
        self, predict_then: PredictThen, query_log: QueryLog, default: DefaultAnswer
    ) -> None:
        self._predict_then = predict_then
        self._log = query_log
        self._default = default

    async def predict(
        self,
        route: AppRoute,
        buffers: list[InputBuffer],
        query_ids: list[int],
        uid: int | None,
        deadline: float,
        remember: bool = True,
    ) -> list[Prediction]:
        """Run every input through the steps, by one shared deadline; `remember` the
        answers in the query log (for feedback by query id)."""
        app = route.app.name
        if route.pipeline is None:
            return [self._default(app, NO_MODELS, query_id) for query_id in query_ids]
        reasons: dict[int, str] = {}
        alive = list(range(len(buffers)))
        current = list(buffers)
        outputs: list[Any] = [None] * len(buffers)
        labels: list[list[str]] = [[] for _ in buffers]  # per input, each step's version
        for step, serving in enumerate(route.pipeline):
            following = route.pipeline[step + 1] if step + 1 < len(route.pipeline) else None
            alive = await self._step(route, serving, following, alive, current, query_ids,
                                     deadline, outputs, reasons, labels)  # fmt: skip
            if not alive:
                break
        predictions = [
            self._default(app, reasons[index], query_id)
            if index in reasons
            else Prediction(query_id, outputs[index], models=tuple(labels[index]))
            for index, query_id in enumerate(query_ids)
        ]
        if remember:
            self._remember(route, uid, predictions)
        return predictions

    async def _step(
        self,
        route: AppRoute,
        serving: ModelServing,
        following: ModelServing | None,
        alive: list[int],
        current: list[InputBuffer],
        query_ids: list[int],
        deadline: float,
        outputs: list[Any],
        reasons: dict[int, str],
        labels: list[list[str]],
    ) -> list[int]:
        """Ask one step for the live inputs; return the inputs still live after it (each
        one's `labels` gain the version that answered it: under a canary rollout of the
        step's model, the current one or the new one)."""
        name = serving.model_id.name
        counter = route.counters.get(name)
        if counter is not None:
            counter.inc(len(alive))
        asked = [current[index] for index in alive]
        versions = {name: route.version_of(name)}
        [answers] = (await ask_versions(self._predict_then, versions, asked, deadline)).values()
        survivors = []
        for index, prediction in zip(alive, answers, strict=True):
            reason = prediction.explanation if prediction.is_default else None
            if reason is None and following is not None:
                reason = self._feed(prediction.output, following, current, index)
            if reason is not None:
                reasons[index] = reason
                continue
            outputs[index] = prediction.output
            labels[index].append(
                prediction.models[0] if prediction.models else str(serving.model_id)
            )
            survivors.append(index)
        return survivors

    @staticmethod
    def _feed(
        output: Any, following: ModelServing, current: list[InputBuffer], index: int
    ) -> str | None:
        try:
            current[index] = encode_step_output(output, following.input_type)
        except InvalidInput as exc:
            target = following.model_id
            return f"Pipeline error: a step's output is not a valid input of {target}: {exc}"
        return None

    def _remember(self, route: AppRoute, uid: int | None, replies: list[Prediction]) -> None:
        """Each answer, as the last step's, with every step's version (`steps`)."""
        last = route.app.pipeline[-1]
        for prediction in replies:
            if not prediction.is_default:
                answers = {last: prediction.output}
                labels = {last: prediction.models[-1]}
                record = QueryRecord(route.app.name, uid, route.arms, (last,), answers, (last,),
                                     labels, prediction.models)  # fmt: skip
                self._log.remember(prediction.query_id, record)
