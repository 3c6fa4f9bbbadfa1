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

__all__ = ["FieldError", "error_type", "openai_error", "openai_error_body", "openai_error_reply"]


class FieldError(Exception):
    """An error about one request field: answered as its `error` (an `InvalidInput` of
    the message given as text), naming `param`."""

    def __init__(self, param: str, error: str | ClipperError) -> None:
        super().__init__(str(error))
        self.param = param
        self.error = InvalidInput(error) if isinstance(error, str) else error


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
    param = exc.param if isinstance(exc, FieldError) else None
    if isinstance(exc, FieldError):
        exc = exc.error
    row = error_row(exc)
    message = str(exc) if isinstance(exc, ClipperError) else "unexpected server error"
    return {"message": message, "type": error_type(row.http_status), "param": param,
            "code": row.code}  # fmt: skip


def openai_error_body(exc: BaseException) -> bytes:
    """The JSON error body of `exc`."""
    return orjson.dumps({"error": openai_error(exc)})


def openai_error_reply(exc: BaseException) -> Reply:
    """The reply to `exc`: the table's status, OpenAI's shape, the table's headers."""
    error = exc.error if isinstance(exc, FieldError) else exc
    return Reply(error_row(error).http_status, openai_error_body(exc), error_headers(error))
