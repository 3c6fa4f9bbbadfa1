"""The Open Inference Protocol's REST routes on the query port, and `/openapi.json`.

    GET  /v2                                     server metadata
    GET  /v2/health/live | /v2/health/ready      health (200 true, 400 false)
    GET  /v2/models/{name}[/versions/{v}]        model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready  model readiness
    POST /v2/models/{name}[/versions/{v}]/infer  inference (JSON, or JSON + binary data)

Errors are `{"error": "<message>", "cause": "<message>", "code": "<code>"}` with the status
of `clipper.http.errors.ERROR_TABLE`.
Request bodies may be gzip or deflate encoded (`Content-Encoding`).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from clipper.core.exceptions import (
    ClipperError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from clipper.core.input_limits import InputLimits
from clipper.frontend.oip.datatypes import InferResponse
from clipper.frontend.oip.openapi import openapi_json
from clipper.frontend.oip.rest_codec import decode_infer_request, encode_infer_response
from clipper.frontend.oip.service import InferenceService
from clipper.http.errors import error_row, oip_error_body
from clipper.http.request_body import TIMEOUT_HEADER, read_body

__all__ = ["V2RestApi"]

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]
_JSON: Headers = [(b"content-type", b"application/json")]
_HEADER_LENGTH = b"inference-header-content-length"
_DECODERS = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


class _Reply:
    """A status, headers and body chunks to send."""

    __slots__ = ("chunks", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers = _JSON) -> None:
        self.status = status
        self.headers = headers
        self.chunks: list[Any] = [body]


def _json(status: int, value: Any) -> _Reply:
    return _Reply(status, orjson.dumps(value))


def _error(exc: ClipperError) -> _Reply:
    return _Reply(error_row(exc).http_status, oip_error_body(exc))


class V2RestApi:
    """ASGI handler of the `/v2` routes over an InferenceService."""

    def __init__(
        self, service: InferenceService, max_body_bytes: int, limits: InputLimits | None = None
    ) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._limits = limits if limits is not None else InputLimits()

    @staticmethod
    def handles(path: str) -> bool:
        """Whether `path` is one of ours (Clipper's `/v2/predict` of an app "v2" is not)."""
        return path in ("/v2", "/v2/", "/openapi.json") or path.startswith(
            ("/v2/health/", "/v2/models/")
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Answer one HTTP request."""
        try:
            reply = await self._route(scope, receive)
        except ClipperError as exc:
            reply = _error(exc)
        size = sum(len(chunk) for chunk in reply.chunks)
        headers = [*reply.headers, (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        last = len(reply.chunks) - 1
        for index, chunk in enumerate(reply.chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < last})

    async def _route(self, scope: Scope, receive: Any) -> _Reply:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/openapi.json":
            return _only("GET", method) or _Reply(200, openapi_json())
        parts = [part for part in path.split("/") if part]
        if parts == ["v2"]:
            return _only("GET", method) or _json(200, self._service.server_metadata())
        if parts[1] == "health" and len(parts) == 3 and parts[2] in ("live", "ready"):
            return _only("GET", method) or self._health(parts[2])
        if parts[1] == "models" and len(parts) >= 3:
            return await self._model_route(parts[2], parts[3:], method, scope, receive)
        return _error(NotFound(f"no route for {method} {path}"))

    def _health(self, which: str) -> _Reply:
        if which == "live":
            return _json(200, {"live": True})
        ready = self._service.server_ready()
        return _json(200 if ready else 400, {"ready": ready})

    async def _model_route(
        self, name: str, rest: list[str], method: str, scope: Scope, receive: Any
    ) -> _Reply:
        version = None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        if not rest:
            return _only("GET", method) or _json(200, self._service.model_metadata(name, version))
        if rest == ["ready"]:
            return _only("GET", method) or self._model_ready(name, version)
        if rest == ["infer"]:
            return _only("POST", method) or await self._infer(name, version, scope, receive)
        return _error(NotFound(f"no route for {method} {scope['path']}"))

    def _model_ready(self, name: str, version: str | None) -> _Reply:
        ready = self._service.model_ready(name, version)
        return _json(200 if ready else 400, {"name": name, "ready": ready})

    async def _infer(self, name: str, version: str | None, scope: Scope, receive: Any) -> _Reply:
        headers = dict(scope["headers"])
        body = await self._read_body(headers, receive)
        request = decode_infer_request(body, _int_header(headers, _HEADER_LENGTH), self._limits)
        timeout_us = _int_header(headers, TIMEOUT_HEADER)
        budget_s = timeout_us / 1e6 if timeout_us is not None else None
        response = await self._service.infer(name, version, request, budget_s)
        return _infer_reply(response)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Any) -> bytes:
        limit = self._max_body_bytes
        body = await read_body(headers.items(), receive, limit)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        return body if encoding == b"identity" else _decompress(body, encoding, limit)


def _decompress(body: bytes, encoding: bytes, limit: int) -> bytes:
    wbits = _DECODERS.get(encoding)
    if wbits is None:
        raise InvalidInput(f"unsupported Content-Encoding {encoding.decode(errors='replace')!r}")
    decoder = zlib.decompressobj(wbits)
    try:
        data = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"cannot decode the {encoding.decode()} body: {exc}") from exc
    if len(data) > limit:
        raise PayloadTooLarge(f"decoded request body over the limit of {limit} bytes")
    return data


def _infer_reply(response: InferResponse) -> _Reply:
    header, chunks = encode_infer_response(response)
    if not chunks:
        return _Reply(200, header)
    headers: Headers = [
        (b"content-type", b"application/octet-stream"),
        (_HEADER_LENGTH, str(len(header)).encode()),
    ]
    reply = _Reply(200, header, headers)
    reply.chunks.extend(chunks)
    return reply


def _only(allowed: str, method: str) -> _Reply | None:
    """None when `method` is allowed, else the 405 reply."""
    if method == allowed:
        return None
    reply = _error(MethodNotAllowed(f"method {method} not allowed here (use {allowed})"))
    reply.headers = [*_JSON, (b"allow", allowed.encode())]
    return reply


def _int_header(headers: dict[bytes, bytes], name: bytes) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"header {name.decode()} must be a non-negative integer")
    return int(value)
