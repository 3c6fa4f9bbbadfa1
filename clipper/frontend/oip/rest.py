"""The Open Inference Protocol's REST routes on the query port, and `/openapi.json`.

    GET  /v2                                     server metadata
    GET  /v2/health/live | /v2/health/ready      health (200 true, 400 false)
    GET  /v2/models/{name}[/versions/{v}]        model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready  model readiness
    GET  /v2/models/{name}[/versions/{v}]/config model configuration, Triton's shape
                                                 (`model_transaction_policy.decoupled`:
                                                 the model streams)
    POST /v2/models/{name}[/versions/{v}]/infer  inference (JSON, or JSON + binary data)
    POST /v2/models/{name}[/versions/{v}]/generate[_stream]
                                                 Triton's generate extension
                                                 (clipper.frontend.oip.generate)

Errors are `{"error": "<message>", "cause": "<message>", "code": "<code>"}` with the status
of `clipper.http.errors.ERROR_TABLE`.
Request bodies may be gzip or deflate encoded (`Content-Encoding`).
"""

from __future__ import annotations

import zlib
from typing import Any

from clipper.core.exceptions import InvalidInput, PayloadTooLarge
from clipper.core.input_limits import InputLimits
from clipper.frontend.error_replies import oip_error_reply
from clipper.frontend.oip.datatypes import InferResponse
from clipper.frontend.oip.generate import (
    GenerateRequest,
    collect,
    decode_generate_request,
    generate_reply,
    generate_stream_reply,
)
from clipper.frontend.oip.openapi import openapi_json
from clipper.frontend.oip.rest_codec import decode_infer_request, encode_infer_response
from clipper.frontend.oip.service import InferenceService, ModelTarget
from clipper.http.reply import Headers, Reply, json_reply
from clipper.http.request_body import TIMEOUT_HEADER, read_body
from clipper.http.routes import Request, Route, RouteGroup
from clipper.security.auth import QueryTokenGuard

__all__ = ["V2RestApi"]

_HEADER_LENGTH = b"inference-header-content-length"
_DECODERS = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}
_MODEL = "/v2/models/{name}"
_VERSION = "/v2/models/{name}/versions/{version}"


class V2RestApi:
    """The `/v2` routes over an InferenceService (see `routes`)."""

    def __init__(
        self,
        service: InferenceService,
        max_body_bytes: int,
        limits: InputLimits | None = None,
        guard: QueryTokenGuard | None = None,
    ) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._limits = limits if limits is not None else InputLimits()
        self._guard = guard if guard is not None else QueryTokenGuard()  # query tokens

    def routes(self) -> RouteGroup:
        """The protocol's routes (answering errors in its shape) for the port's table."""
        return RouteGroup(
            [
                Route("GET", "/openapi.json", self._openapi),
                Route("GET", "/v2", self._server_metadata),
                Route("GET", "/v2/health/live", self._live),
                Route("GET", "/v2/health/ready", self._ready),
                *(
                    route
                    for model in (_MODEL, _VERSION)
                    for route in (
                        Route("GET", model, self._model_metadata),
                        Route("GET", f"{model}/ready", self._model_ready),
                        Route("GET", f"{model}/config", self._model_config),
                        Route("POST", f"{model}/infer", self._infer),
                        Route("POST", f"{model}/generate", self._generate),
                        Route("POST", f"{model}/generate_stream", self._generate_stream),
                    )
                ),
            ],
            oip_error_reply,
            prefix="/v2/",
        )

    async def _openapi(self, request: Request) -> Reply:
        return Reply(200, openapi_json())

    async def _server_metadata(self, request: Request) -> Reply:
        return json_reply(200, self._service.server_metadata())

    async def _live(self, request: Request) -> Reply:
        return json_reply(200, {"live": True})

    async def _ready(self, request: Request) -> Reply:
        ready = self._service.server_ready()
        return json_reply(200 if ready else 400, {"ready": ready})

    async def _model_metadata(self, request: Request) -> Reply:
        params = request.params
        return json_reply(200, self._service.model_metadata(params["name"], params.get("version")))

    async def _model_ready(self, request: Request) -> Reply:
        name = request.params["name"]
        ready = self._service.model_ready(name, request.params.get("version"))
        return json_reply(200 if ready else 400, {"name": name, "ready": ready})

    async def _model_config(self, request: Request) -> Reply:
        params = request.params
        return json_reply(200, self._service.model_config(params["name"], params.get("version")))

    async def _generate(self, request: Request) -> Reply:
        target, generate, budget_s = await self._generate_request(request)
        output = await collect(self._service, target, generate, budget_s)
        return generate_reply(target, generate, output)

    async def _generate_stream(self, request: Request) -> Reply:
        target, generate, budget_s = await self._generate_request(request)
        return await generate_stream_reply(self._service, target, generate, budget_s)

    async def _generate_request(
        self, request: Request
    ) -> tuple[ModelTarget, GenerateRequest, float | None]:
        """A generate request's target, its decoded body and the transport's budget."""
        name, version = request.params["name"], request.params.get("version")
        self._guard.require_v2(name, request.headers)
        headers = dict(request.headers)
        body = await self._read_body(headers, request.receive)
        target = self._service.resolve(name, version)
        timeout_us = _int_header(headers, TIMEOUT_HEADER)
        budget_s = timeout_us / 1e6 if timeout_us is not None else None
        return target, decode_generate_request(body, target, self._limits), budget_s

    async def _infer(self, request: Request) -> Reply:
        name, version = request.params["name"], request.params.get("version")
        self._guard.require_v2(name, request.headers)
        headers = dict(request.headers)
        body = await self._read_body(headers, request.receive)
        infer = decode_infer_request(body, _int_header(headers, _HEADER_LENGTH), self._limits)
        timeout_us = _int_header(headers, TIMEOUT_HEADER)
        budget_s = timeout_us / 1e6 if timeout_us is not None else None
        return _infer_reply(await self._service.infer(name, version, infer, budget_s))

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


def _infer_reply(response: InferResponse) -> Reply:
    header, chunks = encode_infer_response(response)
    if not chunks:
        return Reply(200, header)
    headers: Headers = [
        (b"content-type", b"application/octet-stream"),
        (_HEADER_LENGTH, str(len(header)).encode()),
    ]
    reply = Reply(200, header, headers)
    reply.chunks.extend(chunks)
    return reply


def _int_header(headers: dict[bytes, bytes], name: bytes) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"header {name.decode()} must be a non-negative integer")
    return int(value)
