"""How each frontend of the query port answers an error: the table's status and body
(`clipper.http.errors`), with the authentication headers a refused query token needs."""

from __future__ import annotations

import math
from collections.abc import Callable

from clipper.core.exceptions import AuthError, Overloaded
from clipper.http.errors import error_body, error_row, oip_error_body
from clipper.http.reply import JSON_HEADERS, Headers, Reply
from clipper.security.auth import auth_headers

__all__ = ["clipper_error_reply", "error_headers", "oip_error_reply"]


def error_headers(exc: BaseException) -> Headers:
    """The headers of an error reply: JSON; for a 401 the scheme to authenticate with, for a
    query refused by admission control (429) when to retry (whole seconds, at least 1)."""
    if isinstance(exc, Overloaded):
        return [*JSON_HEADERS, (b"retry-after", b"%d" % max(1, math.ceil(exc.retry_after_s)))]
    return auth_headers(exc) if isinstance(exc, AuthError) else JSON_HEADERS


def _error_reply(encode: Callable[[BaseException], bytes]) -> Callable[[BaseException], Reply]:
    def error_reply(exc: BaseException) -> Reply:
        return Reply(error_row(exc).http_status, encode(exc), error_headers(exc))

    return error_reply


clipper_error_reply = _error_reply(error_body)
"""Clipper's REST API: `{"error": <kind>, "cause": <message>, "code": <code>}`."""
oip_error_reply = _error_reply(oip_error_body)
"""The Open Inference Protocol: `{"error": <message>, "cause": <message>, "code": <code>}`."""
