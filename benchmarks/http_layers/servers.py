"""Minimal no-op apps, one per HTTP layer: `{"input": x}` in, `{"output": x}` out.

Run one as `python -m benchmarks.http_layers.servers KIND PORT`; each parses the JSON body
and encodes the answer with orjson, so only the HTTP layer differs between them. The
asyncio + httptools candidate is the peers benchmark's bare server
(`benchmarks/peers/services/bare_server.py`), which answers the same way.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

__all__ = ["KINDS", "main"]


def answer(body: bytes) -> bytes:
    """The no-op model's whole work."""
    return orjson.dumps({"output": orjson.loads(body)["input"]})


# -- granian, RSGI (its Rust HTTP server calling a Python coroutine) ------------------------


async def rsgi_app(scope: Any, protocol: Any) -> None:
    """The RSGI no-op app."""
    body = await protocol()
    reply = answer(body)
    protocol.response_bytes(200, [("content-type", "application/json")], reply)


def serve_granian(port: int) -> None:
    """granian's fastest setup measured here for this app (2026-11-29, 2 cores): Rust task
    implementation, single-threaded runtime, HTTP/1 only, its default loop. About 32k req/s
    at c=32, against 10-29k with its defaults or with uvloop."""
    from granian.constants import HTTPModes, Interfaces, RuntimeModes, TaskImpl
    from granian.server import Server

    Server(
        "benchmarks.http_layers.servers:rsgi_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.RSGI,
        workers=1,
        runtime_mode=RuntimeModes.st,
        task_impl=TaskImpl.rust,
        http=HTTPModes.http1,
        log_enabled=False,
    ).serve()


# -- uvicorn: a bare ASGI app, and the same route in Starlette --------------------------------


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """The raw ASGI no-op app."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    reply = answer(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(reply))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


def starlette_app() -> Any:
    """The Starlette no-op app (one POST route)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def predict(request: Request) -> Response:
        return Response(answer(await request.body()), media_type="application/json")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def serve_uvicorn(port: int, app: Any) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)  # fmt: skip


KINDS = {
    "granian RSGI": lambda port: serve_granian(port),
    "uvicorn, bare ASGI": lambda port: serve_uvicorn(port, asgi_app),
    "uvicorn + Starlette": lambda port: serve_uvicorn(port, starlette_app()),
}


def main() -> None:
    """`KIND PORT`: serve until killed."""
    kind, port = sys.argv[1], int(sys.argv[2])
    KINDS[kind](port)


if __name__ == "__main__":
    main()
