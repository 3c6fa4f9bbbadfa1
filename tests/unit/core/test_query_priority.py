"""A query's priority in a Clipper predict body: an integer class from 0 to 9, or absent."""

from __future__ import annotations

import pytest

from clipper.core.exceptions import InvalidInput
from clipper.core.inputs import decode_predict_request, parse_priority
from clipper.core.types import InputType


def test_the_body_priority_is_decoded_and_absent_by_default() -> None:
    asked = decode_predict_request(b'{"input": [1.0], "priority": 3}', InputType.DOUBLES)
    plain = decode_predict_request(b'{"input": [1.0]}', InputType.DOUBLES)

    assert (asked.priority, plain.priority) == (3, None)


@pytest.mark.parametrize("value", [b"-1", b"10", b"true", b"1.5", b'"2"'])
def test_a_bad_priority_is_invalid_input(value: bytes) -> None:
    body = b'{"input": [1.0], "priority": ' + value + b"}"

    with pytest.raises(InvalidInput, match="priority must be an integer from 0 to 9"):
        decode_predict_request(body, InputType.DOUBLES)


def test_parse_priority_names_where_the_value_came_from() -> None:
    assert parse_priority(9, "Clipper-Priority") == 9
    with pytest.raises(InvalidInput, match=r"^Clipper-Priority must be"):
        parse_priority("high", "Clipper-Priority")
