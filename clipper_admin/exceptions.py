"""Clipper's `clipper_admin` exceptions, on top of Clipper's one exception tree.

`ClipperException` is `clipper.core.exceptions.ClipperError` itself, so every error the admin and
query clients raise (`ModelNotFound`, `DeployFailed`, `ServerUnreachable`, ...) is a
`ClipperException`.
"""

from __future__ import annotations

from clipper.core.exceptions import ClipperError

__all__ = ["ClipperException", "UnconnectedException"]

ClipperException = ClipperError
"""Base of every error raised by `clipper_admin` (Clipper's name for `ClipperError`)."""


class UnconnectedException(ClipperException):
    """A method needs a connection to a cluster and there is none."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No connection to Clipper cluster. Call ClipperConnection.connect to connect to "
            "an existing cluster or ClipperConnection.start_clipper to create a new one"
        )
