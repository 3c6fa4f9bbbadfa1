"""The worker's side of the RPC: a blocking socket shared by the serve loop and heartbeats.

The socket stays in blocking mode for its whole life: a receive with a timeout uses the
kernel's SO_RCVTIMEO (set only when the timeout changes), so each read is one `recv_into`
system call into a reused buffer, and each send one `sendall`, or one `sendmsg` over
the parts of a reply (its arrays are never joined into one frame).

Spinning: while messages come close together, a read first polls the socket for up to
`spin_s` (non-blocking reads) and sleeps in the kernel only if nothing came: the next batch
is then picked up without a sleep and a wake-up, which on a virtual CPU cost more than a
small batch (`python -m benchmarks.worker_spin` measures it). Between polls the worker
yields its CPU, so a server or client runnable on it is not held up by the spin. Under
sparse traffic reads block at once.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import threading
import time
from typing import Protocol

from clipper.core.exceptions import RpcError
from clipper.rpc.protocol import (
    RECEIVE_CHUNK_BYTES,
    FrameDecoder,
    Heartbeat,
    Message,
    encode_message,
)

__all__ = ["RpcConnection", "WorkerConnection", "parse_address"]

_IOV_MAX = 1024  # buffers per sendmsg (Linux's UIO_MAXIOV)
DENSE_TRAFFIC_SPINS = 4
"""A worker spins before a read when the last message took under this many spin times."""


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """`tcp://host:port` or `unix:///path` -> (family name, socket address)."""
    if address.startswith("unix://"):
        return "unix", address[len("unix://") :]
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not host or not port.isdigit():
        raise RpcError(f"invalid RPC address {address!r}; expected tcp://host:port or unix://path")
    return "tcp", (host, int(port))


class RpcConnection(Protocol):
    """What the serve loop needs of its connection: one socket (`WorkerConnection`) or the
    fan-out to several query frontends (`clipper.worker.fanout.FrontendLinks`).

    `source` names where the last message read came from (`receive`, `poll`, `poll_any`);
    `send_to` sends a frame back there, whatever was read since (a running batch holding
    the batches of several frontends answers each on its own connection)."""

    spin_s: float

    @property
    def source(self) -> object: ...
    def send(self, payload: bytes | Message) -> None: ...
    def send_to(self, source: object, payload: bytes) -> None: ...
    def send_parts(self, parts: list[bytes | memoryview]) -> None: ...
    def receive(self, timeout_s: float | None = None) -> Message | Heartbeat | None: ...
    def poll(self) -> Message | None: ...
    def poll_any(self) -> Message | None: ...
    def close(self) -> None: ...


class WorkerConnection:
    """A connected RPC socket; `send` is thread-safe, `receive` is for one reader."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        self._sock = sock
        self._send_lock = threading.Lock()
        self._decoder = FrameDecoder()
        self._ready: list[Message] = []
        self._chunk = memoryview(bytearray(RECEIVE_CHUNK_BYTES))
        self._receive_timeout_s: float | None = None
        self.spin_s = 0.0  # poll this long before a blocking read (see `receive`)
        self._last_wait_s = math.inf  # how long the last message took to arrive

    @classmethod
    def dial(cls, address: str, timeout_s: float) -> WorkerConnection:
        """Connect, retrying until `timeout_s` passes (the server may still be starting)."""
        family, target = parse_address(address)
        deadline = time.monotonic() + timeout_s
        while True:
            sock = socket.socket(socket.AF_UNIX if family == "unix" else socket.AF_INET)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            if family == "tcp":
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return cls(sock)

    @classmethod
    def connect_once(cls, address: str) -> WorkerConnection | None:
        """Connect once; None when nobody listens there (yet)."""
        family, target = parse_address(address)
        sock = socket.socket(socket.AF_UNIX if family == "unix" else socket.AF_INET)
        sock.settimeout(1.0)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            return None
        if family == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def send(self, payload: bytes | Message) -> None:
        """Send one encoded frame (or a message to encode)."""
        data = payload if isinstance(payload, bytes) else encode_message(payload)
        with self._send_lock:
            self._sock.sendall(data)

    @property
    def source(self) -> object:
        """Itself: every message comes from this one socket."""
        return self

    def send_to(self, source: object, payload: bytes) -> None:
        """Send one encoded frame (one socket: `source` is this one)."""
        self.send(payload)

    def send_parts(self, parts: list[bytes | memoryview]) -> None:
        """Send one frame given in parts, uncopied (a scatter send, resumed where the
        kernel stopped when it takes less than all)."""
        if len(parts) == 1:
            self.send(bytes(parts[0]))
            return
        views = [memoryview(part) for part in parts if len(part)]  # none empty: see below
        with self._send_lock:
            while views:
                sent = self._sock.sendmsg(views[:_IOV_MAX])
                while sent:
                    if sent >= len(views[0]):
                        sent -= len(views.pop(0))
                    else:
                        views[0], sent = views[0][sent:], 0

    def receive(self, timeout_s: float | None = None) -> Message | Heartbeat | None:
        """Block for the next message; None when the server closed the connection.

        With `timeout_s`, returns `Heartbeat()` as a tick when nothing arrived in time.
        """
        if timeout_s != self._receive_timeout_s:
            self._set_receive_timeout(timeout_s)
        decoder = self._decoder
        while not self._ready:
            # A large frame is received straight into its own buffer; the rest through
            # the reused chunk, which the decoder copies from.
            frame = decoder.receive_view()
            target = self._chunk if frame is None else frame
            waiting = time.perf_counter()
            try:
                # Spin only while messages come close together: under sparse traffic
                # a worker sleeps at once instead of burning a core.
                spin = 0 < self._last_wait_s < DENSE_TRAFFIC_SPINS * self.spin_s
                size = self._receive_spinning(target) if spin else None
                if size is None:
                    size = self._sock.recv_into(target)
            except (BlockingIOError, TimeoutError):
                return Heartbeat()
            except ConnectionError:
                return None
            finally:
                self._last_wait_s = time.perf_counter() - waiting
            if not size:
                return None
            if frame is None:
                self._ready.extend(decoder.feed(self._chunk[:size]))
            else:
                self._ready.extend(decoder.received(size))
        return self._ready.pop(0)

    def poll(self) -> Message | None:
        """The next message if one is already here, else None at once (never blocks; a
        closed connection reads as None too, and the next `receive` sees it)."""
        if self._ready:
            return self._ready.pop(0)
        frame = self._decoder.receive_view()
        target = self._chunk if frame is None else frame
        try:
            size = self._sock.recv_into(target, 0, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError, ConnectionError):
            return None
        if not size:
            return None
        if frame is None:
            self._ready.extend(self._decoder.feed(self._chunk[:size]))
        else:
            self._ready.extend(self._decoder.received(size))
        return self._ready.pop(0) if self._ready else None

    def poll_any(self) -> Message | None:
        """`poll` (one socket: there is no other to read)."""
        return self.poll()

    def fileno(self) -> int:
        """The socket's file descriptor (to wait on several connections at once)."""
        return self._sock.fileno()

    def pump(self) -> bool:
        """Read what has arrived, without blocking, into the messages `take` returns;
        False when the peer closed the connection."""
        frame = self._decoder.receive_view()
        target = self._chunk if frame is None else frame
        try:
            size = self._sock.recv_into(target, 0, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not size:
            return False
        if frame is None:
            self._ready.extend(self._decoder.feed(self._chunk[:size]))
        else:
            self._ready.extend(self._decoder.received(size))
        return True

    def take(self) -> Message | None:
        """The next message already read (`pump`), else None."""
        return self._ready.pop(0) if self._ready else None

    def _receive_spinning(self, target: memoryview) -> int | None:
        """Poll for up to `spin_s` before blocking; None when nothing came in that time."""
        deadline = time.perf_counter() + self.spin_s
        receive, flags = self._sock.recv_into, socket.MSG_DONTWAIT
        while True:
            try:
                return receive(target, 0, flags)
            except BlockingIOError:
                if time.perf_counter() >= deadline:
                    return None
                os.sched_yield()  # a runnable server or client on this CPU goes first

    def _set_receive_timeout(self, timeout_s: float | None) -> None:
        """SO_RCVTIMEO: a blocking read gives up after `timeout_s` (0: never)."""
        seconds = 0.0 if timeout_s is None else max(timeout_s, 1e-3)
        whole = int(seconds)
        timeval = struct.pack("@ll", whole, int((seconds - whole) * 1e6))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self._receive_timeout_s = timeout_s

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
