"""OpenAI's error shape for the errors of the one table (clipper.http.errors):

    {"error": {"message": <cause>, "type": <kind>, "param": <field or null>, "code": <code>}}

with the row's HTTP status, `code` the row's stable code (the exception's class name) and
`type` OpenAI's kind of error for that status.
"""

from __future__ import annotations

import orjson

from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.frontend.error_replies import error_headers
from clipper.http.errors import error_row
from clipper.http.reply import Reply

__all__ = ["error_type", "field_error", "openai_error", "openai_error_body", "openai_error_reply"]


_PARAM = "openai_param"  # the attribute naming the field an error is about


def field_error(param: str, error: str | ClipperError) -> ClipperError:
    """`error` (an `InvalidInput` of a text) about the request field `param` (its error
    object names it): still the one tree's class, answered by its row."""
    exc = InvalidInput(error) if isinstance(error, str) else error
    setattr(exc, _PARAM, param)
    return exc


def error_type(status: int) -> str:
    """OpenAI's `type` for an HTTP status."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def openai_error(exc: BaseException) -> dict[str, object]:
    """The `error` object of `exc` (a cause that is not Clipper's is not shown)."""
    param = getattr(exc, _PARAM, None)
    row = error_row(exc)
    message = str(exc) if isinstance(exc, ClipperError) else "unexpected server error"
    return {"message": message, "type": error_type(row.http_status), "param": param,
            "code": row.code}  # fmt: skip


def openai_error_body(exc: BaseException) -> bytes:
    """The JSON error body of `exc`."""
    return orjson.dumps({"error": openai_error(exc)})


def openai_error_reply(exc: BaseException) -> Reply:
    """The reply to `exc`: the table's status, OpenAI's shape, the table's headers."""
    return Reply(error_row(exc).http_status, openai_error_body(exc), error_headers(exc))
