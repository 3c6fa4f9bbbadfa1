"""A query's answers handed on by callback, and the adapters between callbacks and futures.

The data plane's hot path gives a query's answers to one callback (`AnswersCallback`), with
no future of its own; callers that want to await them, and routed queries that run as
tasks, go through the two adapters here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from clipper.dataplane.prediction import Prediction

__all__ = ["Answers", "AnswersCallback", "answers_or_future", "deliver"]

Answers = list[Prediction] | BaseException
"""What a query's callback gets: one prediction per input, or why there are none."""
AnswersCallback = Callable[[Answers], None]


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
