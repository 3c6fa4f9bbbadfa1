"""Running ASGI apps on uvicorn inside our own event loop, on sockets we bind."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["EmbeddedServer", "bind_socket"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; raises OSError with the address when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner; TLS with `ssl_context`."""

    def __init__(
        self, app: Any, sock: socket.socket, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            http="httptools",
            ws="none",  # no app served here has a WebSocket route; loading one costs ~45 ms
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
