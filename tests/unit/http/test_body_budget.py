"""The query port's budget for buffered request bodies, over real loopback sockets: a
large body the budget cannot hold is refused at once (503 ServerBusy) while the bodies
in it are being received; a chunked body reserves as it arrives; everything reserved
comes back when the request is answered or its client goes, and the memory is given back
to the OS after a burst."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from clipper.core.input_limits import HttpLimits
from clipper.http.body_budget import RETURN_AFTER_BYTES, BodyBudget
from clipper.http.http11 import LARGE_BODY_BYTES, serve_http11
from clipper.http.uvicorn_host import bind_socket
from tests.unit.http.test_http11 import echo_app, exchange, post

MAX_BODY = 4 << 20
BUDGET = 3 * MAX_BODY // 2  # one whole large body fits, two do not


@contextlib.asynccontextmanager
async def budget_server() -> AsyncIterator[int]:
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    limits = replace(HttpLimits(), max_buffered_body_bytes=BUDGET)
    task = asyncio.create_task(serve_http11(echo_app, sock, MAX_BODY, stop, limits=limits))
    yield sock.getsockname()[1]
    stop.set()
    await task


async def half_sent(port: int, length: int) -> asyncio.StreamWriter:
    """A request announcing `length` body bytes that sends all but the last."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/big", b"x" * length)[:-1])
    await writer.drain()
    return writer


async def test_a_large_body_past_the_budget_is_refused_while_others_are_received() -> None:
    async with budget_server() as port:
        stalled = await half_sent(port, MAX_BODY)
        await asyncio.sleep(0.2)

        [refused] = await exchange(port, post("/big", b"y" * MAX_BODY))
        [small] = await exchange(port, post("/small", b"z"))

        stalled.close()
        await asyncio.sleep(0.2)  # its reservation ends with its connection
        [after] = await exchange(port, post("/big", b"y" * MAX_BODY))

    assert refused.startswith(b"HTTP/1.1 503")
    assert b'"code":"ServerBusy"' in refused
    assert small.endswith(b"POST /small z")
    assert after.startswith(b"HTTP/1.1 200")


async def test_answered_bodies_free_their_reservation() -> None:
    async with budget_server() as port:
        for _ in range(4):  # four times the budget, one after another
            [answer] = await exchange(port, post("/big", b"y" * MAX_BODY))
            assert answer.startswith(b"HTTP/1.1 200")


async def test_a_chunked_body_reserves_as_it_arrives() -> None:
    async with budget_server() as port:
        stalled = await half_sent(port, MAX_BODY)
        await asyncio.sleep(0.2)
        chunk = b"c" * LARGE_BODY_BYTES
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(16))  # 4 MiB: 2 free
        chunked = b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        [refused] = await exchange(port, chunked + chunks + b"0\r\n\r\n")
        stalled.close()

    assert refused.startswith(b"HTTP/1.1 503"), refused[:100]


def test_the_memory_goes_back_after_a_burst_not_after_small_bodies() -> None:
    given_back = []
    budget = BodyBudget(1 << 30, give_back=lambda: given_back.append(1))

    assert budget.reserve(LARGE_BODY_BYTES)
    budget.release(LARGE_BODY_BYTES)
    assert given_back == []  # a small peak

    assert budget.reserve(RETURN_AFTER_BYTES)
    assert budget.reserve(1)
    budget.release(RETURN_AFTER_BYTES)
    assert given_back == []  # not back to none yet
    budget.release(1)
    assert given_back == [1]
    assert (budget.in_use, budget.refused) == (0, 0)
    assert not budget.reserve(2 << 30)
    assert budget.refused == 1
