"""A worker's fan-out to several query frontends, over real sockets (clipper.worker.fanout)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.rpc.protocol import (
    Batch,
    BatchReply,
    Cancel,
    FrameDecoder,
    Heartbeat,
    Message,
    Refused,
    Register,
    StreamEnd,
    Welcome,
    encode_message,
)
from clipper.worker import fanout
from clipper.worker.connection import WorkerConnection
from clipper.worker.fanout import FrontendLinks

REGISTER = Register("m", "1", 0, "doubles", 1234, secret="one-time")


OPEN: list[socket.socket | FrontendLinks] = []
"""What a test opened, closed after it (see `closed_after`)."""


@pytest.fixture(autouse=True)
def closed_after() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


class Peer:
    """The server's end of one connection: sends messages, reads what the worker sent."""

    def __init__(self, sock: socket.socket) -> None:
        OPEN.append(sock)
        sock.settimeout(2.0)
        self.sock = sock
        self.decoder = FrameDecoder()
        self.ready: list[Message] = []

    def send(self, message: Message) -> None:
        self.sock.sendall(encode_message(message))

    def read(self) -> Message:
        while not self.ready:
            self.ready.extend(self.decoder.feed(self.sock.recv(65536)))
        return self.ready.pop(0)


class Frontend:
    """A listening Unix socket standing in for a frontend's RPC listener."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX)
        OPEN.append(self.listener)
        self.listener.bind(str(path))
        self.listener.listen()
        self.listener.settimeout(0.01)

    def accept(self, links: FrontendLinks) -> Peer:
        """Accept the worker's link, turning the worker's loop meanwhile (it dials there)."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert isinstance(links.receive(timeout_s=0.02), Heartbeat)
            try:
                return Peer(self.listener.accept()[0])
            except TimeoutError:
                continue
        raise TimeoutError("the worker never dialled")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def home() -> tuple[WorkerConnection, Peer]:
    worker_end, server_end = socket.socketpair()
    return WorkerConnection(worker_end), Peer(server_end)


def home_path(frontend_path: Path) -> Path:
    """Where a test's control process listens again (beside the frontend's socket)."""
    return frontend_path.parent / "home.sock"


def welcomed(home: tuple[WorkerConnection, Peer], path: Path) -> tuple[FrontendLinks, Peer]:
    connection, server = home
    links = FrontendLinks(connection, [f"unix://{path}"], "ticket", f"unix://{home_path(path)}")
    OPEN.insert(0, links)  # closed last: it closes the worker's ends
    links.send(REGISTER)
    assert server.read() == REGISTER  # home gets the one-time credential
    server.send(Welcome())
    assert isinstance(links.receive(timeout_s=1.0), Welcome)
    return links, server


def test_the_worker_registers_at_home_then_at_each_frontend_with_its_ticket(
    home: tuple[WorkerConnection, Peer], tmp_path: Path
) -> None:
    frontend = Frontend(tmp_path / "0.sock")
    links, _ = welcomed(home, tmp_path / "0.sock")

    registration = frontend.accept(links).read()

    assert isinstance(registration, Register)
    assert (registration.model, registration.replica, registration.secret) == ("m", 0, "ticket")


def test_a_reply_goes_back_on_the_link_its_batch_came_from(
    home: tuple[WorkerConnection, Peer], tmp_path: Path
) -> None:
    frontend = Frontend(tmp_path / "0.sock")
    links, server = welcomed(home, tmp_path / "0.sock")
    peer = frontend.accept(links)
    peer.read()
    peer.send(Welcome())
    peer.send(Batch(5, "doubles", 10**6, [], b""))

    from_frontend = links.receive(timeout_s=1.0)
    links.send_parts([encode_message(BatchReply(5, [1.0]))])
    server.send(Batch(9, "doubles", 10**6, [], b""))
    from_home = links.receive(timeout_s=1.0)
    links.send_parts([encode_message(BatchReply(9, [2.0]))])
    links.send(Heartbeat())

    assert isinstance(from_frontend, Batch)
    assert from_frontend.id == 5
    assert isinstance(from_home, Batch)
    assert from_home.id == 9
    assert peer.read() == BatchReply(5, [1.0])
    assert server.read() == BatchReply(9, [2.0])
    assert server.read() == Heartbeat()  # heartbeats go home only


def test_poll_any_reads_every_link_and_send_to_answers_where_a_message_came_from(
    home: tuple[WorkerConnection, Peer], tmp_path: Path
) -> None:
    frontend = Frontend(tmp_path / "0.sock")
    links, server = welcomed(home, tmp_path / "0.sock")
    peer = frontend.accept(links)
    peer.read()
    peer.send(Welcome())
    peer.send(Batch(1, "doubles", 10**6, [], b""))
    assert isinstance(links.receive(timeout_s=1.0), Batch)
    from_peer = links.source
    server.send(Batch(1, "doubles", 10**6, [], b""))  # the same id, from home
    peer.send(Cancel(1))

    read: list[tuple[object, Message]] = []
    deadline = time.monotonic() + 2.0
    while len(read) < 2 and time.monotonic() < deadline:
        if (message := links.poll_any()) is not None:
            read.append((links.source, message))
    links.send_to(from_peer, encode_message(StreamEnd(1, 0)))
    links.send_to(home[0], encode_message(StreamEnd(1, 1)))

    assert sorted((source is from_peer, type(m).__name__) for source, m in read) == [
        (False, "Batch"),
        (True, "Cancel"),
    ]
    assert peer.read() == StreamEnd(1, 0)
    assert server.read() == StreamEnd(1, 1)


def test_a_frontend_that_goes_away_is_redialled(
    home: tuple[WorkerConnection, Peer], tmp_path: Path
) -> None:
    path = tmp_path / "0.sock"
    frontend = Frontend(path)
    links, _ = welcomed(home, path)
    first = frontend.accept(links)
    first.read()
    first.sock.close()
    frontend.close()

    assert isinstance(links.receive(timeout_s=0.1), Heartbeat)  # the worker serves on
    again = Frontend(path).accept(links)  # the restarted frontend, same socket path
    assert isinstance(again.read(), Register)


def test_without_home_the_worker_serves_on_and_registers_again_with_its_ticket(
    home: tuple[WorkerConnection, Peer], tmp_path: Path
) -> None:
    path = tmp_path / "0.sock"
    frontend = Frontend(path)
    links, server = welcomed(home, path)
    peer = frontend.accept(links)
    peer.read()
    peer.send(Welcome())
    server.sock.close()  # the control process is killed

    assert isinstance(links.receive(timeout_s=0.3), Heartbeat)  # not None: serving on
    links.send(Heartbeat())  # dropped, nobody home
    peer.send(Batch(7, "doubles", 10**6, [], b""))
    batch = links.receive(timeout_s=1.0)
    links.send_parts([encode_message(BatchReply(7, [3.0]))])
    assert isinstance(batch, Batch)
    assert peer.read() == BatchReply(7, [3.0])

    new_home = Frontend(home_path(path))  # a new control process
    first = new_home.accept(links)
    assert first.read() == Register("m", "1", 0, "doubles", 1234, secret="ticket")
    first.send(Refused("not adopted yet"))
    second = new_home.accept(links)  # asked again
    assert isinstance(second.read(), Register)
    second.send(Welcome())
    assert isinstance(links.receive(timeout_s=0.2), Heartbeat)  # the welcome is not the loop's
    links.send(Heartbeat())
    assert second.read() == Heartbeat()


def test_a_worker_with_neither_home_nor_a_frontend_exits(
    home: tuple[WorkerConnection, Peer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "ORPHAN_TIMEOUT_S", 0.2)
    links, server = welcomed(home, tmp_path / "0.sock")  # no frontend listens there
    server.sock.close()

    deadline = time.monotonic() + 3.0
    while (message := links.receive(timeout_s=0.05)) is not None:
        assert isinstance(message, Heartbeat)
        assert time.monotonic() < deadline
