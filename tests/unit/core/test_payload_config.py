"""An app's `payload_log` setting: validated, with clear errors."""

from __future__ import annotations

import pytest

from clipper.core.exceptions import InvalidRequest
from clipper.core.payload_config import PAYLOAD_FIELDS, parse_payload_log


def test_defaults_and_kinds() -> None:
    assert parse_payload_log(None) is None
    config = parse_payload_log({})
    assert config is not None
    assert (config.sink, config.kind, config.sample, config.fields) == (
        "jsonl", "jsonl", 1.0, PAYLOAD_FIELDS,
    )  # fmt: skip
    assert parse_payload_log({"sink": "cloudevents:http://h:1/x"}).kind == "cloudevents"  # type: ignore[union-attr]
    assert parse_payload_log({"sink": "redis://h:6379/s?maxlen=5"}).kind == "redis"  # type: ignore[union-attr]


def test_fields_kept_in_record_order() -> None:
    config = parse_payload_log({"fields": ["output", "input"]})
    assert config is not None
    assert config.fields == ("input", "output")
    assert config.to_dict() == {"sink": "jsonl", "sample": 1.0, "fields": ["input", "output"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("jsonl", "must be an object"),
        ({"sink": 3}, "sink must be a string"),
        ({"sink": "file:/tmp/x"}, "must be 'jsonl'"),
        ({"sink": "cloudevents:ftp://h/x"}, "http\\(s\\) URL"),
        ({"sink": "redis://h:6379"}, "names the stream"),
        ({"sink": "redis://h:port/s"}, "Port could not be cast"),
        ({"sink": "redis://h:1/s?maxlen=0"}, "maxlen"),
        ({"sample": -0.1}, "from 0 to 1"),
        ({"sample": True}, "from 0 to 1"),
        ({"fields": "input"}, "list of strings"),
        ({"fields": ["inputs"]}, "unknown"),
        ({"rate": 1}, "unknown keys"),
    ],
)
def test_bad_settings_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_payload_log(value)
