"""The WebSocket of `/<app>/stream` from a plain client (wsproto over a socket): on both
HTTP servers of the query port (the lean one and uvicorn), refusals, and a server that
stops closing its sockets with 1001.
"""

from __future__ import annotations

import socket
from collections import deque
from typing import Any

import orjson
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.integration.cluster import ServerFactory, ServerHandle, deploy
from tests.integration.query.test_streaming import PIECES, counting_stream


class SocketClient:
    """A WebSocket client: wsproto's framing over a blocking socket (10 s timeouts)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: deque[Event] = deque()
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
        self.handshake = self.next_event()

    def next_event(self) -> Event | None:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.popleft()

    def send(self, value: Any) -> None:
        self.sock.sendall(self.ws.send(TextMessage(orjson.dumps(value).decode())))

    def query(self, value: Any) -> list[dict[str, Any]]:
        """Send a query; its messages up to its end or error."""
        self.send(value)
        messages = []
        while True:
            event = self.next_event()
            assert isinstance(event, TextMessage), event
            messages.append(orjson.loads(event.data))
            if messages[-1]["type"] in ("end", "error"):
                return messages

    def close(self) -> None:
        self.sock.close()


def counting(tmp_path: Any) -> Any:
    return counting_stream(str(tmp_path / "steps"))


@pytest.mark.parametrize("query_http", ["lean", "uvicorn"])
def test_both_http_servers_stream_over_a_websocket(
    configured_server: ServerFactory, tmp_path: Any, query_http: str
) -> None:
    server = configured_server(f"ws-{query_http}", query_http=query_http)
    deploy(server, "counting", counting(tmp_path))
    client = SocketClient(server.query_port, "/counting/stream")
    try:
        assert isinstance(client.handshake, AcceptConnection)
        messages = client.query({"input": [1.0]})
        assert [m["type"] for m in messages] == ["piece"] * PIECES + ["end"]
        assert messages[-1]["output"] == "p0 p1 p2 p3 p4 "
        unknown = client.query({"input": [1.0], "version": "9"})
        assert unknown[0]["code"] == "UnknownVersion"
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(module_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> ServerHandle:
    handle = module_server("ws-refusals")
    deploy(handle, "counting", counting(tmp_path_factory.mktemp("ws")))
    return handle


def test_a_path_that_is_no_stream_is_refused(server: ServerHandle) -> None:
    client = SocketClient(server.query_port, "/counting/predict")
    try:
        assert isinstance(client.handshake, RejectConnection)
        assert client.handshake.status_code == 403
    finally:
        client.close()


def test_an_unknown_app_is_an_error_message(server: ServerHandle) -> None:
    client = SocketClient(server.query_port, "/nope/stream")
    try:
        [error] = client.query({"input": [1.0]})
        assert (error["type"], error["code"]) == ("error", "UnknownApplication")
    finally:
        client.close()
    known = SocketClient(server.query_port, "/counting/stream")
    try:
        assert known.query({"input": "not numbers"})[0]["code"] == "InvalidInput"
        assert known.query({"input": [1.0], "max_pieces": 1})[-1]["type"] == "end"
    finally:
        known.close()


def test_a_server_that_stops_closes_its_sockets_going_away(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("ws-stop")
    client = SocketClient(server.query_port, "/any/stream")
    try:
        assert isinstance(client.handshake, AcceptConnection)
        server.stop()
        event = client.next_event()  # sent before the server exited, waiting in the socket
        assert isinstance(event, CloseConnection)
        assert event.code == 1001
    finally:
        client.close()
