"""Decoding `POST /<app>/update` bodies (feedback for the app's selection policy).

Accepted: Clipper's `{"uid": int, "input": x, "label": y}`, or `{"query_id": n, "label": y}`
/ `{"query_id": n, "reward": r}` for an earlier answer (with an optional `uid`). A reward is a
number in [0, 1] (1 best); JSON has no NaN or infinity, so labels are finite too.

For an app that logs payloads (clipper.payloads), accepted feedback is also recorded, joined
to its query by `query_id`; an app with the `single` policy and no pipeline, which remembers
no answers and learns nothing, then accepts feedback on any `query_id`, only to record it
(unless it remembers the answer: one given under a canary rollout, whose checks judge it).
"""

from __future__ import annotations

from typing import Any

import orjson

from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import encode_input, optional_uid
from clipper.core.types import InputType
from clipper.dataplane.feedback import FeedbackRequest

__all__ = ["decode_update_request"]


def decode_update_request(raw: bytes, input_type: InputType) -> FeedbackRequest:
    """Parse and validate an update body."""
    body = _json_object(raw)
    query_id = body.get("query_id")
    if query_id is not None and (isinstance(query_id, bool) or not isinstance(query_id, int)):
        raise InvalidInput("query_id must be an integer")
    has_label = body.get("label") is not None
    reward = body.get("reward")
    if reward is not None and (
        isinstance(reward, bool) or not isinstance(reward, (int, float)) or not 0 <= reward <= 1
    ):
        raise InvalidInput("reward must be a number in [0, 1] (1 best)")
    if has_label == (reward is not None):
        raise InvalidInput("feedback needs exactly one of 'label' and 'reward'")
    uid = optional_uid(body)
    if query_id is not None:
        return FeedbackRequest(query_id, uid, None, body.get("label"), has_label, reward)
    if "input" not in body or not has_label:
        raise InvalidInput("feedback needs a 'query_id', or an 'input' and a 'label'")
    buffer = encode_input(body["input"], input_type)
    return FeedbackRequest(None, uid, buffer, body["label"], True, None)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body
