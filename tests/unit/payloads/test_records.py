"""Rendering payload entries into records, and the records as CloudEvents and stream entries."""

from __future__ import annotations

import base64
import struct

import numpy as np

from clipper.core.payload_config import PAYLOAD_FIELDS
from clipper.core.types import InputType
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.prediction import Prediction
from clipper.payloads.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, events_of
from clipper.payloads.records import input_json, render_entry, rfc3339

ALL = frozenset(PAYLOAD_FIELDS)


def test_rfc3339_in_utc() -> None:
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250000Z"


def test_inputs_in_their_json_form() -> None:
    assert input_json(struct.pack("<2d", 1.5, 2.0), InputType.DOUBLES) == [1.5, 2.0]
    assert input_json(np.array([3], "<i4").tobytes(), InputType.INTEGERS) == [3]
    assert input_json("é".encode(), InputType.STRINGS) == "é"
    assert input_json(b"\x00\x01", InputType.BYTES) == base64.b64encode(b"\x00\x01").decode()


def test_a_batch_gives_one_record_per_input() -> None:
    answers = [Prediction(7, 1.0, models=("m:1",)), Prediction(8, -1, True, "SLO missed")]
    entry = (0.0, "a", [struct.pack("<d", 1.0), struct.pack("<d", 2.0)], answers, 0.0015)
    first, second = render_entry(InputType.DOUBLES, ALL, entry)
    assert first == {
        "kind": "query", "query_id": 7, "time": "1970-01-01T00:00:00.000000Z", "app": "a",
        "models": ["m:1"], "input": [1.0], "output": 1.0, "outputs": None, "latency_ms": 1.5,
        "default": False, "partial": False, "explanation": None,
    }  # fmt: skip
    assert second["default"] is True
    assert second["explanation"] == "SLO missed"


def test_an_ensemble_record_names_each_version_and_its_output() -> None:
    combined = Prediction(7, 1.5, models=("m:1", "n:2"), partial=True,
                          outputs={"m:1": 1.0, "n:2": 2.0})  # fmt: skip
    [record] = render_entry(InputType.DOUBLES, ALL, (0.0, None, [struct.pack("<d", 1.0)],
                                                      [combined], 0.0))  # fmt: skip
    assert record["models"] == ["m:1", "n:2"]
    assert record["outputs"] == {"m:1": 1.0, "n:2": 2.0}
    assert (record["output"], record["partial"], record["app"]) == (1.5, True, None)


def test_fields_select_but_kind_and_query_id_stay() -> None:
    entry = (0.0, "a", [struct.pack("<d", 1.0)], [Prediction(7, 1.0)], 0.0)
    [record] = render_entry(InputType.DOUBLES, frozenset({"output"}), entry)
    assert record == {"kind": "query", "query_id": 7, "output": 1.0}


def test_feedback_records_carry_the_query_id() -> None:
    request = FeedbackRequest(query_id=7, label=2.0, has_label=True)
    entry = (0.0, "a", request, {"rewards": {"m:1": 1}})
    [record] = render_entry(InputType.DOUBLES, ALL, entry)
    assert record["kind"] == "feedback"
    assert record["query_id"] == 7
    assert record["feedback"] == {"label": 2.0, "reward": None, "uid": None, "rewards": {"m:1": 1}}


def test_a_query_is_two_cloudevents_with_its_id() -> None:
    record = {"kind": "query", "query_id": 7, "time": "T", "app": "a", "input": [1.0], "output": 2}
    (request, request_body), (response, response_body) = events_of(record, "src", "ns")
    assert request["ce-type"] == REQUEST_TYPE
    assert response["ce-type"] == RESPONSE_TYPE
    assert request["ce-id"] == response["ce-id"] == "7"
    assert request["ce-specversion"] == "1.0"
    assert request["ce-time"] == "T"
    assert request_body == b'{"input":[1.0]}'
    assert b'"input"' not in response_body
    assert b'"output":2' in response_body
