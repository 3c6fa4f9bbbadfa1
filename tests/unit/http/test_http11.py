"""The lean HTTP/1.1 server, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop

from clipper.http.http11 import LARGE_BODY_BYTES, Http11Protocol, serve_http11
from clipper.http.uvicorn_host import bind_socket


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the method, path and body it received."""
    body = (await receive())["body"]
    if scope["path"] == "/boom":
        raise RuntimeError("handler failure")
    reply = f"{scope['method']} {scope['path']} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http11(echo_app, sock, 64, stop))
    yield sock.getsockname()[1]
    stop.set()
    await task


@contextlib.asynccontextmanager
async def big_server() -> AsyncIterator[int]:
    """A server that takes bodies up to 4 MiB, so large ones are received in place."""
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http11(echo_app, sock, 4 << 20, stop))
    yield sock.getsockname()[1]
    stop.set()
    await task


@pytest.fixture
async def big_port() -> AsyncIterator[int]:
    async with big_server() as port:
        yield port


async def exchange(port: int, request: bytes, replies: int = 1) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answers = []
    for _ in range(replies):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answers.append(head + await reader.readexactly(length))
    writer.close()
    return answers


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(), len(body), extra, body,
    )  # fmt: skip


async def test_answers_a_request(port: int) -> None:
    [answer] = await exchange(port, post("/a/predict", b"hello"))
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"POST /a/predict hello")


async def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    answers = await exchange(port, post("/one", b"1") + post("/two", b"2"), replies=2)
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"POST /one 1", b"POST /two 2"]


async def test_pipelined_requests_before_garbage_are_answered_then_400(port: int) -> None:
    stream = post("/one", b"1") + post("/two", b"2") + b"\x00GARBAGE\r\n\r\n"
    answers = await exchange(port, stream, replies=3)
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers[:2]] == [b"POST /one 1", b"POST /two 2"]
    assert answers[2].startswith(b"HTTP/1.1 400")
    assert b'"code":"MalformedRequest"' in answers[2]


async def test_a_pipelined_request_over_the_limit_is_refused_after_the_ones_before(
    port: int,
) -> None:
    answers = await exchange(port, post("/one", b"1") + post("/big", b"x" * 100), replies=2)
    assert answers[0].endswith(b"POST /one 1")
    assert answers[1].startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"gzip", b"deflate,chunked"])
async def test_a_transfer_coding_other_than_chunked_gets_501(port: int, coding: bytes) -> None:
    request = b"POST /z HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    [answer] = await exchange(port, request % coding)
    assert answer.startswith(b"HTTP/1.1 501 Not Implemented")
    assert b'"code":"UnsupportedTransferCoding"' in answer


async def test_a_chunked_body_is_read(port: int) -> None:
    request = (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    )
    [answer] = await exchange(port, request)
    assert answer.endswith(b"POST /c ab")


async def test_a_body_over_the_limit_gets_413(port: int) -> None:
    [answer] = await exchange(port, post("/big", b"x" * 100))
    assert answer.startswith(b"HTTP/1.1 413")


async def test_malformed_requests_get_400(port: int) -> None:
    [answer] = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


async def test_expect_continue_is_honoured(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_failing_handler_gets_500_and_the_server_keeps_serving(port: int) -> None:
    [failed] = await exchange(port, post("/boom", b""))
    assert failed.startswith(b"HTTP/1.1 500")
    [answer] = await exchange(port, post("/fine", b""))
    assert answer.startswith(b"HTTP/1.1 200")


async def test_http10_closes_the_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /old HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 5)
    assert response.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in response
    writer.close()


def large_body(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"z" * (size % 256)


@pytest.mark.parametrize("size", [LARGE_BODY_BYTES, 3 * LARGE_BODY_BYTES + 17])
async def test_a_large_body_arrives_whole_then_the_next_request(big_port: int, size: int) -> None:
    body = large_body(size)
    first, second = await exchange(big_port, post("/big", body) + post("/next", b"n"), replies=2)
    assert first.startswith(b"HTTP/1.1 200")
    assert first.endswith(b"POST /big " + body)
    assert second.endswith(b"POST /next n")


async def test_a_large_body_sent_in_pieces_arrives_whole(big_port: int) -> None:
    body = large_body(2 * LARGE_BODY_BYTES + 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", big_port)
    request = post("/slow", body)
    for start in range(0, len(request), 100_000):  # headers with a first piece, then the rest
        writer.write(request[start : start + 100_000])
        await writer.drain()
        await asyncio.sleep(0.01)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert (await reader.readexactly(length)).endswith(body)
    writer.write(post("/again", b"a"))  # the connection goes on with a fresh parser
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_chunked_large_body_goes_through_the_parser(big_port: int) -> None:
    body = large_body(LARGE_BODY_BYTES + 3)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    [answer] = await exchange(big_port, request)
    assert answer.endswith(b"POST /chunked " + body)


async def test_a_large_http10_body_is_answered_then_closed(big_port: int) -> None:
    body = large_body(LARGE_BODY_BYTES)
    reader, writer = await asyncio.open_connection("127.0.0.1", big_port)
    writer.write(b"POST /old HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    response = await asyncio.wait_for(reader.read(), 5)
    assert b"connection: close" in response
    assert response.endswith(b"POST /old " + body)
    writer.close()


async def test_a_client_gone_mid_large_body_leaves_the_server_serving(big_port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", big_port)
    writer.write(post("/cut", large_body(2 * LARGE_BODY_BYTES))[:LARGE_BODY_BYTES])
    await writer.drain()
    writer.close()
    [answer] = await exchange(big_port, post("/after", b"ok"))
    assert answer.endswith(b"POST /after ok")


def test_large_bodies_on_uvloop_too() -> None:
    """The server runs on uvloop, whose buffered reads differ from asyncio's."""

    async def scenario() -> None:
        async with big_server() as port:
            await test_a_large_body_arrives_whole_then_the_next_request(port, LARGE_BODY_BYTES)
            await test_a_large_body_sent_in_pieces_arrives_whole(port)
            await test_a_chunked_large_body_goes_through_the_parser(port)
            await test_a_client_gone_mid_large_body_leaves_the_server_serving(port)
            await test_answers_a_request(port)

    uvloop.run(scenario())


async def test_a_closed_connection_is_freed_without_the_cycle_collector(port: int) -> None:
    """Issue 28: an idle server may not run a full collection for a long while, so a
    connection must not outlive its close in a reference cycle (parser and transport both
    refer back to it): a flood of connections otherwise stayed in memory, flood after flood."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            assert await exchange(port, post("/x", b"hi"))  # answered, then closed
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)  # idle, then gone
        writer.close()
        await asyncio.sleep(0.2)  # the server sees every close
        alive = [o for o in gc.get_objects() if type(o) is Http11Protocol]  # isinstance would
        # ask every object its __class__, and some modules' objects warn when asked
    finally:
        gc.enable()

    assert alive == []


async def test_a_draining_stop_answers_a_keep_alive_connection_once_more_then_closes() -> None:
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http11(echo_app, sock, 64, stop, drain_idle_s=5.0))
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    writer.write(post("/a", b"1"))
    first = await reader.readuntil(b"POST /a 1")
    stop.set()  # the connection is idle, kept alive
    await asyncio.sleep(0.05)
    writer.write(post("/b", b"2"))  # the client's next request, into the draining server
    second = await asyncio.wait_for(reader.read(), 5.0)  # to EOF: the server closes after it

    assert b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200")
    assert second.endswith(b"POST /b 2")
    assert b"connection: close" in second.lower()
    await asyncio.wait_for(task, 5.0)
    writer.close()


async def test_a_plain_stop_closes_an_idle_keep_alive_connection_at_once() -> None:
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http11(echo_app, sock, 64, stop))
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    writer.write(post("/a", b"1"))
    await reader.readuntil(b"POST /a 1")
    stop.set()

    assert await asyncio.wait_for(reader.read(), 5.0) == b""
    await asyncio.wait_for(task, 5.0)
    writer.close()
