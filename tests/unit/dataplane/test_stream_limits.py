"""The per-request bounds of a whole stream, as a request's fields give them."""

from __future__ import annotations

from typing import Any

import pytest

from clipper.core.exceptions import InvalidInput
from clipper.dataplane.streams import StreamLimits
from clipper.frontend.clipper_api.websocket import socket_app_name


def test_limits_parse_numbers_and_counts() -> None:
    assert StreamLimits.parse(None, None) == StreamLimits()
    assert StreamLimits.parse(2, 5) == StreamLimits(2.0, 5)
    assert StreamLimits.parse(0.25, None).timeout_s == 0.25


@pytest.mark.parametrize(
    ("timeout_s", "max_pieces"),
    [(0, None), (-1, None), (True, None), ("1", None), (1e9, None),
     (None, 0), (None, 1.5), (None, True), (None, "3")],
)  # fmt: skip
def test_bad_limits_are_invalid_input(timeout_s: Any, max_pieces: Any) -> None:
    with pytest.raises(InvalidInput):
        StreamLimits.parse(timeout_s, max_pieces)


def test_socket_paths_name_one_app() -> None:
    assert socket_app_name("/chat/stream") == "chat"
    for path in ("/stream", "//stream", "/a/b/stream", "/chat/predict", "chat/stream"):
        assert socket_app_name(path) is None
