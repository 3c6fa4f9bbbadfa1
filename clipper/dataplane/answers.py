"""A query's answers handed on by callback, and the adapters between callbacks and futures.

The data plane's hot path gives a query's answers to one callback (`AnswersCallback`), with
no future of its own; callers that want to await them, and routed queries that run as
tasks, go through the two adapters here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial

from clipper.core.exceptions import ClipperError
from clipper.core.types import InputBuffer
from clipper.dataplane.prediction import ModelRef, Prediction
from clipper.metrics.server_metrics import ServerMetrics

__all__ = [
    "Answers",
    "AnswersCallback",
    "PredictThen",
    "answers_or_future",
    "ask_versions",
    "deliver",
    "observe_answers",
    "refused_answers",
]

Answers = list[Prediction] | BaseException
"""What a query's callback gets: one prediction per input, or why there are none."""
AnswersCallback = Callable[[Answers], None]
PredictThen = Callable[
    [ModelRef, list[InputBuffer], str | None, float, int | None, AnswersCallback],
    list[Prediction] | None,
]
"""`DataPlane.predict_then` as the selection and pipeline paths call it: for a model."""


def answers_or_future(
    start: Callable[[AnswersCallback], list[Prediction] | None],
) -> list[Prediction] | asyncio.Future[list[Prediction]]:
    """Run a callback-style `start`: its answers when ready at once, else a future of them."""
    answers: asyncio.Future[list[Prediction]] = asyncio.get_running_loop().create_future()
    ready = start(partial(_settle, answers))
    return answers if ready is None else ready


def _settle(answers: asyncio.Future[list[Prediction]], result: Answers) -> None:
    """Resolve a future of answers with what an `AnswersCallback` was given."""
    if answers.done():
        return
    if isinstance(result, BaseException):
        answers.set_exception(result)
    else:
        answers.set_result(result)


def deliver(then: AnswersCallback, task: asyncio.Future[list[Prediction]]) -> None:
    """Hand a routed query's outcome to its callback."""
    if task.cancelled():
        then(asyncio.CancelledError())
    else:
        error = task.exception()
        then(error if error is not None else task.result())


async def ask_versions(
    predict_then: PredictThen,
    versions: Mapping[str, tuple[ModelRef, str]],
    buffers: list[InputBuffer],
    deadline: float,
) -> dict[str, list[Prediction]]:
    """Ask each `(model, version)` for every input, all at once, through the data plane's
    entry point; each one's predictions once all are in (by the deadline at the latest). A
    version the data plane refuses (gone since the route was built) answers each input with
    a failure whose explanation says why."""
    answers: dict[str, list[Prediction]] = {}
    waiting: dict[str, asyncio.Future[list[Prediction]]] = {}
    for key, (model, version) in versions.items():
        try:
            start = partial(predict_then, model, buffers, version, deadline, None)
            ready = answers_or_future(start)
        except ClipperError as exc:
            answers[key] = refused_answers(len(buffers), str(exc))
            continue
        if isinstance(ready, list):
            answers[key] = ready
        else:
            waiting[key] = ready
    if waiting:
        await asyncio.wait(waiting.values())
    for key, future in waiting.items():
        error = future.exception()
        answers[key] = (
            refused_answers(len(buffers), f"Model error: {error}")
            if error is not None
            else future.result()
        )
    return answers


def refused_answers(count: int, why: str) -> list[Prediction]:
    """`count` failed answers (no output, `why` as the explanation) of a model the data
    plane could not ask."""
    return [Prediction(0, None, True, why) for _ in range(count)]


def observe_answers(
    metrics: ServerMetrics, app: str, predictions: list[Prediction], latency_s: float
) -> None:
    """Count one answered request of `app` (any query surface): its latency, its answers
    (those a model gave within the app's SLO apart), and each default answer by its reason
    (the explanation up to its first colon)."""
    answers = from_model = len(predictions)
    for prediction in predictions:
        if prediction.is_default:
            from_model -= 1
            reason = (prediction.explanation or "").split(":")[0]
            metrics.defaults.labels(app, reason).inc()
    metrics.for_app(app).observe_request(latency_s, answers, from_model)
