"""A lean client of streamed HTTP/1.1 answers, for load generators: one keep-alive
connection that POSTs JSON and yields the body's lines as they arrive (chunked or sized).
Lighter than httpx per line, so that the load generator costs the 2 cores less than the
servers it measures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["HttpStatusError", "StreamConnection"]


class HttpStatusError(Exception):
    """The server answered a status other than 200."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


class StreamConnection:
    """One connection to 127.0.0.1:`port`; reconnects after an error or a close."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_lines(self, path: str, body: bytes) -> AsyncIterator[bytes]:
        """POST `body` to `path`; each line of the answer (without its newline)."""
        try:
            async for line in self._exchange(path, body):
                yield line
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, path: str, body: bytes) -> AsyncIterator[bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._reader, self._writer
        if reader is None:
            raise ConnectionError("no connection")
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        chunks = (
            _chunked(reader)
            if headers.get("transfer-encoding") == "chunked"
            else _sized(reader, int(headers.get("content-length", "0")))
        )
        if status != 200:
            raise HttpStatusError(status, b"".join([chunk async for chunk in chunks]))
        pending = b""
        async for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line
        if pending:
            yield pending
        if headers.get("connection") == "close":
            await self.close()

    async def close(self) -> None:
        """Close the connection (the next request opens another)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            return
        chunk = await reader.readexactly(size + 2)
        yield chunk[:-2]


async def _sized(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    while length > 0:
        chunk = await reader.read(min(length, 65536))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(chunk)
        yield chunk
