"""The server's event loop keeps polling between close reads, and only then."""

from __future__ import annotations

import asyncio

from clipper.http.http11 import serve_http11
from clipper.http.loop_polling import LoopPoller
from clipper.http.uvicorn_host import bind_socket
from clipper.rpc.protocol import Heartbeat, encode_message
from clipper.rpc.server import WorkerChannel

SPIN_S = 0.5  # long enough that a slow loop iteration does not end a window early


async def test_close_reads_keep_the_loop_polling_until_the_window_passes() -> None:
    poller = LoopPoller(SPIN_S)

    poller.touch()  # a first read: nothing to tell it came close to another
    assert not poller.polling
    poller.touch()
    assert poller.polling
    await asyncio.sleep(SPIN_S / 5)
    assert poller.polling

    await asyncio.sleep(SPIN_S * 1.5)
    assert not poller.polling


async def test_sparse_reads_never_poll() -> None:
    poller = LoopPoller(0.001)
    for _ in range(3):
        poller.touch()
        assert not poller.polling
        await asyncio.sleep(0.01)  # over 4 windows apart


async def test_zero_turns_polling_off() -> None:
    poller = LoopPoller(0.0)
    for _ in range(3):
        poller.touch()
    assert not poller.polling


async def test_a_read_extends_the_window() -> None:
    poller = LoopPoller(SPIN_S)
    poller.touch()
    poller.touch()
    await asyncio.sleep(SPIN_S * 0.7)
    poller.touch()
    await asyncio.sleep(SPIN_S * 0.7)  # past the first window, within the second

    assert poller.polling


async def test_query_and_worker_reads_are_reported() -> None:
    reads: list[str] = []
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached: the request is malformed")

    serving = asyncio.create_task(
        serve_http11(app, sock, 64, stop, on_read=lambda: reads.append("query"))
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
    writer.write(b"NOT HTTP\r\n\r\n")
    await reader.read()  # answered 400 and closed
    writer.close()
    stop.set()
    await serving
    channel = WorkerChannel(lambda *_: None, lambda _: None, on_read=lambda: reads.append("rpc"))
    channel.data_received(encode_message(Heartbeat()))

    assert reads == ["query", "rpc"]
