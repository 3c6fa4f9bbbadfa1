"""What the data plane answered, as the OpenAI-compatible API reports it: a generation or
an embedding, or the error a default answer is on this API."""

from __future__ import annotations

from dataclasses import dataclass

from clipper.core.exceptions import (
    ClipperError,
    DeadlineExceeded,
    ModelError,
    Overloaded,
    ReplicaUnavailable,
)
from clipper.core.generation import (
    Embedded,
    Generated,
    StopScanner,
    read_embedding,
    read_generated,
)
from clipper.core.records import AppRecord
from clipper.dataplane.dataplane import SLO_MISSED, Prediction, slo_missed
from clipper.dataplane.model_serving import OVERLOADED

__all__ = ["Target", "default_error", "embedded", "generated"]


@dataclass(frozen=True, slots=True)
class Target:
    """The app a request asks, its task, and the request's budget (microseconds)."""

    app: AppRecord
    task: str
    budget_us: int


def generated(prediction: Prediction, stop: tuple[str, ...], target: Target) -> Generated:
    """A whole answer as a result, its text cut before the first of the `stop` strings."""
    if prediction.is_default:
        raise default_error(prediction, target)
    try:
        result = read_generated(prediction.output)
    except TypeError as exc:
        raise ModelError(f"'{target.app.name}' answered no generation: {exc}") from exc
    scanner = StopScanner(stop)
    result.text = scanner.feed(result.text) + scanner.flush()
    if scanner.stopped:
        result.finish_reason = "stop"
    return result


def embedded(prediction: Prediction, target: Target) -> Embedded:
    """An answer as an embedding."""
    if prediction.is_default:
        raise default_error(prediction, target)
    try:
        return read_embedding(prediction.output)
    except TypeError as exc:
        raise ModelError(f"'{target.app.name}' answered no embedding: {exc}") from exc


def default_error(prediction: Prediction, target: Target) -> ClipperError:
    """The error that an answer which would be the app's default output is on this API:
    DeadlineExceeded (504) for a missed SLO, Overloaded (429) for a refused query,
    ModelError (500) when the model failed, else ReplicaUnavailable (503)."""
    explanation = prediction.explanation or "no answer"
    if explanation.startswith(SLO_MISSED):
        return DeadlineExceeded(slo_missed(target.budget_us, target.app.latency_slo_us))
    if explanation.startswith(OVERLOADED):
        return Overloaded(explanation)
    if explanation.startswith("Model error"):
        return ModelError(explanation)
    return ReplicaUnavailable(explanation)
