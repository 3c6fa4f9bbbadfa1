"""Running ASGI apps on uvicorn inside our own event loop, on sockets we bind.

uvicorn keeps a connection that never sends a byte, or sends its headers a byte at a time,
for as long as its client likes, and has no cap on connections. Each server here runs
uvicorn's httptools protocol with a guard: the port's `ConnectionGate` (a cap in all and per
address, idle connections given up first), a connection that sends nothing closed after
`header_timeout_s`, and headers due `header_timeout_s` after they begin (408).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from clipper.core.exceptions import RequestTimeout, TooManyConnections
from clipper.http.connection_gate import ConnectionGate
from clipper.http.errors import error_body

__all__ = ["EmbeddedServer", "bind_socket"]

DEFAULT_HEADER_TIMEOUT_S = 10.0


def bind_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """Bind a listening TCP socket; raises OSError with the address when taken. With
    `reuse_port` (SO_REUSEPORT), processes of the same user may bind the same port, and
    the kernel spreads new connections over their sockets (several query frontends)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a `ConnectionGate` and a header deadline (the
    subclass made per server sets `gate` and `header_timeout_s`)."""

    gate: ConnectionGate
    header_timeout_s: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_request = False
        self._idle_since = time.monotonic()
        self._header_timer: asyncio.TimerHandle | None = None
        refusal = self.gate.admit(self, self.client[0] if self.client else None)
        if refusal is not None:
            _reply_and_close(transport, 503, error_body(TooManyConnections(refusal)))
            return
        # One that never sends a byte is closed like an idle keep-alive connection (the
        # first byte received cancels this timer; uvicorn arms it again after each answer).
        self.timeout_keep_alive_task = self.loop.call_later(
            self.header_timeout_s, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self.gate.release(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._in_request = False
        self._idle_since = time.monotonic()
        super().on_response_complete()

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            message = f"headers not received within {self.header_timeout_s:g} s"
            _reply_and_close(self.transport, 408, error_body(RequestTimeout(message)))

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    # -- clipper.http.connection_gate.GatedConnection -------------------------------------

    def is_idle(self) -> bool:
        return not self._in_request

    def idle_rank(self) -> float:
        return self._idle_since

    def evict(self) -> None:
        self.transport.close()


def _reply_and_close(transport: asyncio.Transport, status: int, body: bytes) -> None:
    reason = {408: b"Request Timeout", 503: b"Service Unavailable"}[status]
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason)
    transport.write(
        b"%scontent-length: %d\r\nconnection: close\r\n\r\n%s" % (head, len(body), body)
    )
    transport.close()


def guarded_protocol(gate: ConnectionGate, header_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol under `gate`, with headers due in `header_timeout_s`."""
    attributes = {"gate": gate, "header_timeout_s": header_timeout_s}
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), attributes)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner; TLS with `ssl_context`;
    connections admitted by `gate` (default: 256, half of them per address)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None = None,
        gate: ConnectionGate | None = None,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        websockets: bool = False,
    ) -> None:
        self.gate = gate if gate is not None else ConnectionGate(256)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            http=guarded_protocol(self.gate, header_timeout_s),
            # only the query port has a WebSocket route (/{app}/stream); loading one costs ~45 ms
            ws="wsproto" if websockets else "none",
            loop="none",
            timeout_graceful_shutdown=5,
        )
        super().__init__(config)
        self._sock = sock
        self._ssl_context = ssl_context

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The server process handles signals itself."""
        yield

    async def run_on_socket(self) -> None:
        """Serve until `should_exit` is set."""
        if not self.config.loaded:
            self.config.load()
        self.config.ssl = self._ssl_context  # serve() keeps a loaded config as it is
        await self.serve(sockets=[self._sock])
