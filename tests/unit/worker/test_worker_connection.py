"""The worker's side of the RPC over a real socket pair: scatter sends and large frames."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from clipper.rpc.protocol import BatchReply, FrameDecoder, encode_message, encode_reply_parts
from clipper.worker.connection import WorkerConnection


@pytest.fixture
def pair() -> Iterator[tuple[WorkerConnection, socket.socket]]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(30)
    yield WorkerConnection(ours), theirs
    ours.close()
    theirs.close()


def receive_frames(sock: socket.socket, count: int) -> list[object]:
    decoder, messages = FrameDecoder(), []
    while len(messages) < count:
        data = sock.recv(1 << 20)
        assert data, "the connection closed early"
        messages += decoder.feed(data)
    return messages


def test_a_reply_in_parts_arrives_as_one_frame_with_its_arrays(
    pair: tuple[WorkerConnection, socket.socket],
) -> None:
    connection, peer = pair
    big = np.arange(3 << 20, dtype=np.float32).reshape(-1, 1024)  # 12 MiB: many partial sends
    outputs = [big, np.zeros((0, 3)), np.array(2.5), "text"]
    reply = BatchReply(7, outputs, [])
    received: list[object] = []
    reader = threading.Thread(target=lambda: received.extend(receive_frames(peer, 2)))
    reader.start()

    connection.send_parts(encode_reply_parts(reply))
    connection.send_parts(encode_reply_parts(BatchReply(8, ["small"], [])))
    reader.join(30)

    first, second = received
    assert isinstance(first, BatchReply)
    assert isinstance(second, BatchReply)
    assert first.id == 7
    np.testing.assert_array_equal(first.outputs[0], big)
    assert first.outputs[1].shape == (0, 3)
    assert first.outputs[2] == 2.5
    assert first.outputs[3] == "text"
    assert second.outputs == ["small"]


def test_a_large_frame_is_received_whole(pair: tuple[WorkerConnection, socket.socket]) -> None:
    connection, peer = pair
    tensor = np.random.default_rng(1).random(1 << 20)  # 8 MiB
    frame = b"".join(encode_reply_parts(BatchReply(3, [tensor], [])))
    sender = threading.Thread(target=peer.sendall, args=(frame,))
    sender.start()

    message = connection.receive(timeout_s=30)
    sender.join(30)

    assert isinstance(message, BatchReply)
    np.testing.assert_array_equal(message.outputs[0], tensor)


def test_dense_traffic_is_picked_up_by_spinning_and_sparse_traffic_sleeps(
    pair: tuple[WorkerConnection, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, peer = pair
    connection.spin_s = 0.05
    spins: list[int | None] = []
    spin = connection._receive_spinning

    def recording_spin(target: memoryview) -> int | None:
        spins.append(result := spin(target))
        return result

    monkeypatch.setattr(connection, "_receive_spinning", recording_spin)
    frame = encode_message(BatchReply(1, ["x"], []))

    peer.sendall(frame)
    assert isinstance(connection.receive(), BatchReply)
    assert spins == []  # the first read: no recent traffic, no spin
    peer.sendall(frame)
    assert isinstance(connection.receive(), BatchReply)
    assert spins == [len(frame)]  # the last message came at once: this one is spun for
    timer = threading.Timer(0.02, peer.sendall, [frame])
    timer.start()
    assert isinstance(connection.receive(), BatchReply)  # arrives while spinning
    assert spins[-1] == len(frame)
    timer = threading.Timer(0.5, peer.sendall, [frame])
    timer.start()
    assert isinstance(connection.receive(), BatchReply)  # the spin gives up, the read blocks
    assert spins[-1] is None
    count = len(spins)
    timer = threading.Timer(0.3, peer.sendall, [frame])
    timer.start()
    assert isinstance(connection.receive(), BatchReply)
    assert len(spins) == count  # the last wait was long: sleep at once


def test_no_spin_time_never_spins(
    pair: tuple[WorkerConnection, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, peer = pair
    spun: list[memoryview] = []
    monkeypatch.setattr(connection, "_receive_spinning", spun.append)
    frame = encode_message(BatchReply(1, ["x"], []))
    for _ in range(3):
        peer.sendall(frame)
        assert isinstance(connection.receive(), BatchReply)
    assert spun == []
