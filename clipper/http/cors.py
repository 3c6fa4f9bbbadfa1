"""CORS for the query API, so web pages on other origins can query models from a browser.

Off unless origins are configured (`cors_allowed_origins`); then each request costs one scan
of its headers for `Origin`. A preflight (`OPTIONS` with an `Origin`, any path) is answered
here with 204; any other request from an allowed origin gets `Access-Control-Allow-Origin`
on its response, errors included, so a page can read the JSON error body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = ["ALLOWED_HEADERS", "CorsPolicy"]

Send = Callable[[dict[str, Any]], Awaitable[None]]

ALLOWED_HEADERS = (
    b"Content-Type, Authorization, Clipper-Timeout-Us, Inference-Header-Content-Length"
)
_ALLOWED_METHODS = b"GET, POST, OPTIONS"
_EXPOSED_HEADERS = b"Inference-Header-Content-Length"
_MAX_AGE_S = b"600"
_ORIGIN = b"origin"


class CorsPolicy:
    """Which origins may call the API, and the headers that tell a browser so."""

    def __init__(self, allowed_origins: Iterable[str]) -> None:
        origins = [origin.rstrip("/") for origin in allowed_origins]
        self.any_origin = "*" in origins
        self.origins = frozenset(origin.encode() for origin in origins if origin != "*")

    def allowed_origin(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
        """The request's `Origin` when it may call the API, else None."""
        for name, value in headers:
            if name == _ORIGIN:
                return value if self.any_origin or value in self.origins else None
        return None

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """Headers added to an actual response for an allowed `origin`."""
        if self.any_origin:
            allow = [(b"access-control-allow-origin", b"*")]
        else:
            allow = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        return [*allow, (b"access-control-expose-headers", _EXPOSED_HEADERS)]

    def preflight_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """Headers of the 204 answering a preflight (none that allow a refused origin)."""
        if origin is None:
            return [(b"vary", b"Origin")]
        return [
            *self.response_headers(origin),
            (b"access-control-allow-methods", _ALLOWED_METHODS),
            (b"access-control-allow-headers", ALLOWED_HEADERS),
            (b"access-control-max-age", _MAX_AGE_S),
        ]

    async def intercept(self, scope: dict[str, Any], send: Send) -> Send | None:
        """Answer a preflight (None: nothing left to do), or the `send` that adds the CORS
        headers to the response (the given one when the origin is not allowed)."""
        origin = self.allowed_origin(scope["headers"])
        if scope["method"] == "OPTIONS":
            start = {"type": "http.response.start", "status": 204}
            await send({**start, "headers": self.preflight_headers(origin)})
            await send({"type": "http.response.body", "body": b""})
            return None
        if origin is None:
            return send
        extra = self.response_headers(origin)

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_cors
