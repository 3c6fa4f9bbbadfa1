"""The bare baseline: a minimal HTTP/1.1 server (asyncio + httptools) calling the model in
its own process. Run as `python bare_server.py PORT WORKLOAD` next to peer_model.py."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import httptools
import orjson
import peer_model

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


def make_handler(workload: str) -> Callable[[bytes], bytes]:
    """Request body -> response body for `workload`: {"input": x} -> {"output": y}."""
    if workload == "noop":
        return lambda body: orjson.dumps({"output": orjson.loads(body)["input"]})
    model = peer_model.train_sklearn_model()

    def predict(body: bytes) -> bytes:
        row = orjson.loads(body)["input"]
        return orjson.dumps({"output": peer_model.predict_rows(model, [row])[0]})

    return predict


class HttpProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests, answer each in order."""

    def __init__(self, handler: Callable[[bytes], bytes]) -> None:
        self.handler = handler
        self.parser = httptools.HttpRequestParser(self)
        self.chunks: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.chunks = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        answer = self.handler(b"".join(self.chunks))
        self.transport.write(_HEAD % len(answer) + answer)


async def serve(port: int, workload: str) -> None:
    handler = make_handler(workload)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(handler), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(serve(int(sys.argv[1]), sys.argv[2]))
    except ImportError:
        asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
