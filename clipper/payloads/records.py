"""Payload records: what the query path leaves in a buffer (`QueryEntry`, `FeedbackEntry`:
plain tuples, cheap to make), and the records the writer renders from them, off the hot path.

A query record, one per input (a batch request gives one per input, each with its id):

    {"kind": "query", "query_id": 12, "time": "2026-05-01T12:00:00.123456Z", "app": "a",
     "models": ["m:1"], "input": [1.0, 2.0], "output": 0.3, "outputs": null,
     "latency_ms": 1.25, "default": false, "partial": false, "explanation": null}

`models` names every version whose answer made the output (an ensemble's several; empty
for a default answer); where an ensemble combined several, `outputs` holds each one's own
output (`{"m:1": 0.3, "n:2": 0.5}`), else null; `partial` is true when an ensemble answered
without the models that missed the deadline. `app` is null in a model version's log for a
query of the version itself (`/v2/models/NAME/infer` where NAME is not an app).

A feedback record (`POST /<app>/update`), joined to its query by `query_id`:

    {"kind": "feedback", "query_id": 12, "time": ..., "app": "a",
     "feedback": {"label": 1, "reward": null, "uid": null, "rewards": {"m:1": 1.0}}}

`input` is the input's JSON form (numbers as a list, a string as it is, bytes in base64);
`fields` (clipper.core.payload_config) keeps a subset; `kind` and `query_id` always stay.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from clipper.core.dtypes import NUMERIC_DTYPES
from clipper.core.types import InputBuffer, InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction

__all__ = [
    "FeedbackEntry",
    "QueryEntry",
    "input_json",
    "render_entry",
    "rfc3339",
]

QueryEntry = tuple[float, str | None, Sequence[InputBuffer], Sequence[Prediction], float]
"""(wall time, the app asked (None: a version itself), the request's inputs, their answers,
the request's latency in seconds)."""
FeedbackEntry = tuple[float, str, FeedbackRequest, dict[str, Any]]
"""(wall time, the app, the decoded update, the data plane's reply to it)."""


def rfc3339(wall_time: float) -> str:
    """A `time.time()` value as RFC 3339 in UTC, to the microsecond (`...Z`)."""
    stamp = datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="microseconds")
    return stamp.removesuffix("+00:00") + "Z"


def input_json(buffer: InputBuffer, input_type: InputType) -> Any:
    """One input's JSON form: numbers as a list, a string as it is, bytes in base64."""
    dtype = NUMERIC_DTYPES.get(input_type)
    if dtype is not None:
        return np.frombuffer(buffer, dtype).tolist()
    if input_type is InputType.STRINGS:
        return bytes(buffer).decode("utf-8", "replace")
    return base64.b64encode(bytes(buffer)).decode("ascii")


def render_entry(
    input_type: InputType, fields: frozenset[str], entry: QueryEntry | FeedbackEntry
) -> list[dict[str, Any]]:
    """The records of one buffered entry (one per input of a query), keeping `fields`."""
    if len(entry) == 4:
        return [_select(_feedback(input_type, entry), fields)]
    wall_time, app, buffers, predictions, latency_s = entry
    time_text, latency_ms = rfc3339(wall_time), round(latency_s * 1000, 3)

    def inputs(buffer: InputBuffer) -> Any:
        return input_json(buffer, input_type) if "input" in fields else None

    return [
        _select(_query(app, time_text, latency_ms, prediction, inputs(buffer)), fields)
        for buffer, prediction in zip(buffers, predictions, strict=False)
    ]


def _query(
    app: str | None, time_text: str, latency_ms: float, prediction: Prediction, input_value: Any
) -> dict[str, Any]:
    outputs = prediction.outputs
    return {
        "kind": "query",
        "query_id": prediction.query_id,
        "time": time_text,
        "app": app,
        "models": list(prediction.models),
        "input": input_value,
        "output": prediction.output,
        "outputs": None if outputs is None else dict(outputs),
        "latency_ms": latency_ms,
        "default": prediction.is_default,
        "partial": prediction.partial,
        "explanation": prediction.explanation,
    }


def _feedback(input_type: InputType, entry: FeedbackEntry) -> dict[str, Any]:
    wall_time, app, request, reply = entry
    feedback: dict[str, Any] = {
        "label": request.label if request.has_label else None,
        "reward": request.reward,
        "uid": request.uid,
        "rewards": reply.get("rewards", {}),
    }
    record: dict[str, Any] = {
        "kind": "feedback",
        "query_id": request.query_id,
        "time": rfc3339(wall_time),
        "app": app,
        "feedback": feedback,
    }
    if request.buffer is not None:  # feedback naming an input, not a query
        record["input"] = input_json(request.buffer, input_type)
    return record


def _select(record: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.items()
        if key in fields or key == "kind" or key == "query_id"
    }
