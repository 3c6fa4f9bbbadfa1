"""The query port's HTTP limits over raw sockets: oversized or too many headers, slow
clients, idle keep-alive connections and too many connections each get a clear answer (or a
close), and the server keeps answering everyone else."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy

LIMITS = {
    "header_timeout_s": 1,
    "body_timeout_s": 1,
    "keep_alive_timeout_s": 1,
    "max_connections": 24,
    "max_headers": 20,
    "max_header_bytes": 4096,
}
GIVE_UP_S = 10.0  # every wait here ends by then; the server's limits are 1 s


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("http-limits", **LIMITS)
    deploy(handle, "m", feature_sum)
    return handle


def connect(server: ServerHandle) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.query_port), timeout=GIVE_UP_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    received = b""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    raise TimeoutError(f"the server kept the connection open; got {received!r}")


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def assert_still_serving(server: ServerHandle) -> None:
    assert server.predict("m", {"input": [1.0, 2.0]}).json()["output"] == 3.0


def request(head: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    length_header = b"content-length: %d\r\n" % (len(body) if length is None else length)
    return b"POST /m/predict HTTP/1.1\r\nhost: x\r\n" + head + length_header + b"\r\n" + body


@pytest.mark.parametrize(
    ("sent", "status", "cause"),
    [
        (request(b"x-big: " + b"a" * 8000 + b"\r\n"), 431, b"max_header_bytes"),
        (b"POST /m/predict HTTP/1.1\r\nx-endless: " + b"a" * 200_000, 431, b"max_header_bytes"),
        (request(b"".join(b"x-%d: 1\r\n" % i for i in range(30))), 431, b"max_headers"),
        (b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\n\r\n", 414, b"max_header_bytes"),
        (request(b"", length=1_000_000_000), 413, b"over the limit"),
    ],
    ids=["large-header", "endless-header", "many-headers", "long-url", "huge-length"],
)
def test_oversized_requests_are_answered_and_closed(
    server: ServerHandle, sent: bytes, status: int, cause: bytes
) -> None:
    with connect(server) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(sent)
        response = read_until_closed(sock)

    assert status_of(response) == status, response
    assert cause in response
    assert_still_serving(server)


def test_a_slowloris_client_gets_408_while_others_are_answered(
    server: ServerHandle,
) -> None:
    started = time.monotonic()
    with connect(server) as sock:
        sock.settimeout(0.2)
        response = b""
        for byte in request(b"x-slow: 1\r\n", b'{"input": [1.0]}'):
            try:
                sock.send(bytes([byte]))
                response = sock.recv(65536)
            except TimeoutError:
                assert_still_serving(server)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if response or time.monotonic() - started > GIVE_UP_S:
                break

    assert status_of(response) == 408, response
    assert time.monotonic() - started < 5


def test_a_body_that_never_completes_gets_408(server: ServerHandle) -> None:
    with connect(server) as sock:
        sock.sendall(request(b"", b'{"input"', length=100))
        response = read_until_closed(sock)

    assert status_of(response) == 408, response
    assert_still_serving(server)


def test_an_idle_keep_alive_connection_is_closed(server: ServerHandle) -> None:
    with connect(server) as sock:
        sock.sendall(request(b"", b'{"input": [1.0]}'))
        response = read_until_closed(sock)

    assert status_of(response) == 200
    assert response.count(b"HTTP/1.1") == 1


def test_connections_past_the_limit_get_503(server: ServerHandle) -> None:
    sockets: list[socket.socket] = []
    refused = b""
    try:
        for _ in range(40):
            sock = connect(server)
            sockets.append(sock)
            sock.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                refused = sock.recv(65536)
            if refused:
                break
    finally:
        for sock in sockets:
            sock.close()

    assert status_of(refused) == 503, refused
    assert b"too many connections" in refused
    assert_still_serving(server)
