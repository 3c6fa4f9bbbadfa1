"""Floods of connections that never send a byte, or stop mid-request, on every port of a
server whose open-files limit is the common 1024: the server stays up, answers a normal
query within its SLO throughout, and says at start what it allows (issue 28, items 1 and 8).

The normal client is 127.0.0.1. An idle flood comes from 127.0.0.2-9 (each address under
the per-address cap, together past the port's cap: the gate gives up idle connections); a
flood stopped mid-request comes from 127.0.0.2 alone (the per-address cap leaves room).
gRPC's core caps its connections and times out handshakes but cannot evict idle ones or cap
per address, so a gRPC call is checked after its flood, not during it.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from clipper.frontend.oip.grpc import grpc_predict_v2_pb2 as pb
from clipper.frontend.oip.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, rss_bytes, wait_until

OPEN_FILES = 1024
FLOOD_SOURCES = [f"127.0.0.{host}" for host in range(2, 10)]
SLO_US = 500_000
# More connections than the server's limit, on each port and on all ports together.
FLOOD = {"query": 1100, "admin": 1100, "grpc": 1100, "rpc": 400}
LOG_ROTATION_S = (
    5.0  # clipper.server.LOG_ROTATION_INTERVAL_S: it opened the first file past the limit
)
GIVE_UP_S = 30.0


def feature_sum(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module", autouse=True)
def enough_open_files_here() -> None:
    """This process holds every flood socket at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = sum(FLOOD.values()) + 512
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed * 2), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "raise `ulimit -Hn`"


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server(
        "floods", open_files=OPEN_FILES, header_timeout_s=3, keep_alive_timeout_s=30
    )
    deploy(handle, "m", feature_sum, slo_us=SLO_US)
    return handle


def ports(server: ServerHandle) -> dict[str, int]:
    return {
        "query": server.query_port,
        "admin": server.admin_port,
        "grpc": server.grpc_port,
        "rpc": server.rpc_port,
    }


@contextlib.contextmanager
def flood(
    port: int, count: int, first_bytes: bytes = b"", sources: list[str] = FLOOD_SOURCES
) -> Iterator[list[socket.socket]]:
    """`count` connections to `port` from `sources` in turn, each sending `first_bytes`
    (nothing by default) and then nothing; all closed on the way out."""
    sockets: list[socket.socket] = []
    try:
        for index in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((sources[index % len(sources)], 0))
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        if first_bytes:
            time.sleep(0.5)  # the connects complete
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(first_bytes)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def assert_serving(server: ServerHandle, grpc_too: bool = True) -> None:
    """The server process runs and answers a query within the SLO, the admin API and gRPC."""
    assert server.process is not None
    assert server.process.poll() is None, "the server exited"
    started = time.monotonic()
    response = httpx.post(f"{server.query_url}/m/predict", json={"input": [1.0, 2.0]}, timeout=10)
    latency_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["default"] is False, response.text
    assert latency_s < SLO_US / 1e6, f"{latency_s:.3f} s"
    assert "m" in server.admin.get_all_applications()
    if not grpc_too:
        return
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        live = pb_grpc.GRPCInferenceServiceStub(channel).ServerLive(
            pb.ServerLiveRequest(), timeout=10
        )
    assert live.live


def test_the_server_says_what_it_allows(server: ServerHandle) -> None:
    log = server.log_path.read_text()

    assert "open files 1024; connections at most: query" in log


def test_idle_floods_on_every_port_at_once_do_not_take_the_server_down(
    server: ServerHandle,
) -> None:
    with contextlib.ExitStack() as floods:
        for name, port in ports(server).items():
            floods.enter_context(flood(port, FLOOD[name]))
        deadline = time.monotonic() + LOG_ROTATION_S * 2 + 1
        while time.monotonic() < deadline:  # past two log rotations, the flood held open
            assert_serving(server, grpc_too=False)
            time.sleep(0.5)
    assert_serving(server)


def test_a_flood_stopped_mid_request_leaves_room_for_other_clients(server: ServerHandle) -> None:
    partial_request = b"POST /m/predict HTTP/1.1\r\nhost: x\r\n"  # headers never end
    with flood(server.query_port, FLOOD["query"], partial_request, FLOOD_SOURCES[:1]) as sockets:
        assert_serving(server, grpc_too=False)
        refused = wait_until(lambda: _refusal(sockets), GIVE_UP_S, "a flood connection refused")
    assert b"503" in refused.split(b"\r\n")[0]
    assert b"TooManyConnections" in refused


def test_a_silent_connection_to_the_admin_port_is_closed(server: ServerHandle) -> None:
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=GIVE_UP_S) as sock:
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, not by this timeout

    assert time.monotonic() - started < GIVE_UP_S


def test_admin_headers_that_never_end_get_408(server: ServerHandle) -> None:
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=GIVE_UP_S) as sock:
        sock.sendall(b"GET /admin/ping HTTP/1.1\r\nx-slow: 1\r\n")
        response = sock.recv(65536)

    assert response.startswith(b"HTTP/1.1 408"), response
    assert b'"code":"RequestTimeout"' in response


def _refusal(sockets: list[socket.socket]) -> bytes | None:
    """The first answer any flood socket got (the server refuses past the caps)."""
    for sock in sockets:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, ConnectionResetError):
            continue
        if data:
            return data
    return None


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_rpc_connections_that_never_register_cost_little_and_are_capped(
    server: ServerHandle,
) -> None:
    assert server.process is not None
    pid = server.process.pid
    cap = int(re.findall(r"unregistered RPC (\d+)", server.log_path.read_text())[-1])
    before_rss, before_fds = rss_bytes(pid), open_fds(pid)
    with flood(server.rpc_port, FLOOD["rpc"]):
        held = 0
        deadline = time.monotonic() + 3.0  # before the 5 s registration timeout
        while time.monotonic() < deadline:  # however far the server got accepting them
            held = max(held, open_fds(pid) - before_fds)
            time.sleep(0.1)
        during_rss = rss_bytes(pid)
        assert_serving(server)

    assert held <= cap + 16, (held, cap)  # the rest closed at once (16: the server's own)
    assert during_rss - before_rss < 16 * 1024 * 1024, (before_rss, during_rss)  # 256 KiB each
