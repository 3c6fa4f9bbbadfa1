"""Clients that send most of a large body and stall (issue 28, item 2): the bodies the
server buffers at once stay within `max_buffered_body_bytes` (others get 503 ServerBusy at
once), normal queries are answered meanwhile, and once the clients leave the server's
memory goes back to about where it was."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, rss_bytes, wait_until

MIB = 1024 * 1024
BODY_BYTES = 16 * MIB
BUDGET_BYTES = 64 * MIB  # four such bodies at once
CLIENTS = 24
GIVE_UP_S = 30.0


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server(  # one frontend: the budget and the memory are one process's
        "half-sent", max_body_bytes=BODY_BYTES, max_buffered_body_bytes=BUDGET_BYTES,
        body_timeout_s=60, frontends=1,
    )  # fmt: skip
    deploy(handle, "m", feature_sum)
    return handle


@contextlib.contextmanager
def stalled_clients(port: int) -> Iterator[tuple[int, int]]:
    """CLIENTS connections announcing a BODY_BYTES body; those the server does not refuse
    at once send all of it but the last KiB. (admitted, refused); closed on the way out."""
    sockets: list[socket.socket] = []
    admitted = refused = 0
    head = b"POST /m/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BODY_BYTES
    try:
        for _ in range(CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP_S)
            sockets.append(sock)
            sock.sendall(head)
            sock.settimeout(0.3)
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                answer = b""
            if answer.startswith(b"HTTP/1.1 503"):
                assert b'"code":"ServerBusy"' in answer
                refused += 1
                continue
            sock.settimeout(GIVE_UP_S)
            sock.sendall(b"\0" * (BODY_BYTES - 1024))
            admitted += 1
        yield admitted, refused
    finally:
        for sock in sockets:
            sock.close()


def test_half_sent_bodies_stay_within_the_budget_and_their_memory_comes_back(
    server: ServerHandle,
) -> None:
    assert server.process is not None
    pid = server.process.pid
    before = rss_bytes(pid)

    with stalled_clients(server.query_port) as (admitted, refused):
        during = rss_bytes(pid)
        normal = httpx.post(f"{server.query_url}/m/predict", json={"input": [1.0]}, timeout=10)

    assert admitted == BUDGET_BYTES // BODY_BYTES
    assert refused == CLIENTS - admitted
    assert normal.status_code == 200, normal.text
    assert during - before < BUDGET_BYTES + 48 * MIB, (before, during)
    # Back to within 10% (and 8 MiB of slack) of where it started, once the clients left.
    wait_until(
        lambda: rss_bytes(pid) < before * 1.1 + 8 * MIB, GIVE_UP_S, "the memory to come back"
    )
    time.sleep(0.1)
