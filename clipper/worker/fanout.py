"""A worker's connections in a server of several query frontends (`clipper.rpc.fanout`).

`FrontendLinks` stands in for the one `WorkerConnection` of the serve loop: the control
process's connection ("home": registration, heartbeats, shutdown) plus one link per
frontend, dialled once home has welcomed the worker and redialled every `REDIAL_INTERVAL_S`
while its frontend is down (a frontend restarts on the same socket path). The serve loop
sees one stream of messages; batches of several frontends are taken in turn (round robin
over the links with a message waiting), and a reply goes back on the link its batch came
from (`current`). While a streamed batch runs, `poll` reads only that batch's link, so its
cancels come from there and later batches of other frontends wait in their sockets. A step
model's running batch reads every link between two steps (`poll_any`; `source` says which
link a message came from) and answers each batch on its own (`send_to`), so the batches of
several frontends share its steps. A link that closes or fails a send is dropped quietly:
the batches of a frontend that died are lost with it, the worker goes on serving the
others.

Losing home (the control process killed) is not the end either: the worker serves the
frontends on, its heartbeats dropped, and redials home every `HOME_REDIAL_S`; once a new
control process listens there it registers again with its ticket (the control process
admits it once it has adopted the replica: refused until then, asked again). Only a worker
with neither home nor any frontend for `ORPHAN_TIMEOUT_S` gives up and exits.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from clipper.rpc.protocol import Batch, Heartbeat, Message, Refused, Register, Shutdown, Welcome
from clipper.worker.connection import WorkerConnection

__all__ = ["HOME_REDIAL_S", "ORPHAN_TIMEOUT_S", "REDIAL_INTERVAL_S", "FrontendLinks"]

log = logging.getLogger("clipper.worker")
REDIAL_INTERVAL_S = 0.05
REFUSED_RETRY_S = 0.5
"""A frontend that refused the registration (say, it has not read the new version from
the registry yet) is asked again after this long."""
HOME_REDIAL_S = 0.2
ORPHAN_TIMEOUT_S = 10.0


@dataclass(slots=True)
class _Link:
    address: str
    connection: WorkerConnection | None = None
    next_dial: float = 0.0


class FrontendLinks:
    """Home plus every frontend, read as one connection (see the module's docstring)."""

    def __init__(
        self, home: WorkerConnection, addresses: Sequence[str], ticket: str, home_address: str
    ) -> None:
        self._home: WorkerConnection | None = home  # None while the control process is down
        self._home_link = _Link(home_address)
        self._links = [_Link(address) for address in addresses]
        self._ticket = ticket
        self._register: Register | None = None  # once home welcomed us: links may dial
        self._current: WorkerConnection | None = home
        self._source: WorkerConnection | None = home  # where the last message read came from
        self._alone_since: float | None = None  # neither home nor a frontend since then
        self._turn = 0
        self.spin_s = 0.0  # spinning is for one socket; several are waited on together

    # -- sending -----------------------------------------------------------------------

    def send(self, payload: bytes | Message) -> None:
        """An encoded frame (a streamed batch's piece or end) to the current link; a
        message (the registration, a heartbeat) home."""
        if isinstance(payload, bytes):
            self._to_current(lambda connection: connection.send(payload))
            return
        if isinstance(payload, Register):
            self._register = payload
        if self._home is None:
            return  # a heartbeat while the control process is down: nobody to hear it
        try:
            self._home.send(payload)
        except OSError:
            if self._register is None:
                raise
            self._lose_home()

    def send_parts(self, parts: list[bytes | memoryview]) -> None:
        """A reply, on the link its batch came from."""
        self._to_current(lambda connection: connection.send_parts(parts))

    def send_to(self, source: object, payload: bytes) -> None:
        """An encoded frame to the connection `source` names (one `source` returned)."""
        target = source if isinstance(source, WorkerConnection) else self._home
        self._to(target, lambda connection: connection.send(payload))

    def _to_current(self, send: Callable[[WorkerConnection], None]) -> None:
        self._to(self._current, send)

    def _to(
        self, target: WorkerConnection | None, send: Callable[[WorkerConnection], None]
    ) -> None:
        if target is None:
            return  # its connection is gone, and the batch with it
        try:
            send(target)
        except OSError:
            if target is self._home:
                self._lose_home()
            else:
                self._drop(target, "its frontend went away")

    # -- receiving -----------------------------------------------------------------------

    def receive(self, timeout_s: float | None = None) -> Message | Heartbeat | None:
        """The next message of any connection; `Heartbeat()` when `timeout_s` passed with
        none; None when home closed (the server is gone)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            message = self._next_ready()
            if message is not None:
                return message
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return Heartbeat()
            self._redial(now)
            if self._orphaned(now):
                log.error("neither the control process nor any frontend for %.0f s: exiting",
                          ORPHAN_TIMEOUT_S)  # fmt: skip
                return None
            if not self._wait(deadline, now):
                return None

    @property
    def source(self) -> object:
        """The connection the last message read came from."""
        return self._source

    def poll(self) -> Message | None:
        """A message of the current link if one is here (a streamed batch's cancels)."""
        current = self._current
        if current is None:
            return None
        message = current.poll()
        if message is not None:
            self._source = current
        return message

    def poll_any(self) -> Message | None:
        """A message of any connection if one is here, never blocking (a running batch's
        new batches and cancels, whichever frontend sent them); `source` says whose."""
        message = self._next_ready()
        if message is not None:
            return message
        for connection in self._connections():
            if not connection.pump() and connection is not self._home:
                self._drop(connection, "its frontend closed the connection")
        self._redial(time.monotonic())
        return self._next_ready()

    def close(self) -> None:
        """Close every connection."""
        for link in self._links:
            if link.connection is not None:
                link.connection.close()
        if self._home is not None:
            self._home.close()

    def _connections(self) -> list[WorkerConnection]:
        links = [link.connection for link in self._links if link.connection is not None]
        return links if self._home is None else [self._home, *links]

    def _orphaned(self, now: float) -> bool:
        if self._home is not None or any(link.connection for link in self._links):
            self._alone_since = None
            return False
        if self._alone_since is None:
            self._alone_since = now
        return now - self._alone_since > ORPHAN_TIMEOUT_S

    def _lose_home(self) -> None:
        """The control process is gone: serve the frontends on, redial it (see above)."""
        if self._home is None:
            return
        log.warning("lost the control process; serving the frontends on, redialling it")
        self._forget_home(HOME_REDIAL_S)

    def _forget_home(self, redial_in_s: float) -> None:
        if self._home is not None:
            self._home.close()
        if self._current is self._home:
            self._current = None
        self._home = self._home_link.connection = None
        self._home_link.next_dial = time.monotonic() + redial_in_s

    def _next_ready(self) -> Message | None:
        """A message already read, taking the connections in turn; registration answers
        of the links are handled here, never returned."""
        connections = self._connections()
        for step in range(len(connections)):
            connection = connections[(self._turn + step) % len(connections)]
            while (message := connection.take()) is not None:
                if self._link_message(connection, message):
                    continue
                self._source = connection
                if isinstance(message, Batch):
                    self._current = connection
                    self._turn = (self._turn + step + 1) % len(connections)
                elif isinstance(message, Welcome) and connection is self._home:
                    self._dial_all()
                return message
        return None

    def _link_message(self, connection: WorkerConnection, message: Message) -> bool:
        """Handle a link's own messages (home's answer to a registration again among
        them); True when it is not for the serve loop."""
        if connection is self._home:
            if self._home_link.connection is None:  # the first registration: the loop's
                return False
            if isinstance(message, Welcome):
                log.info("registered again with the control process")
                self._home_link.connection = None
                return True
            if isinstance(message, Refused):
                log.info("the control process refused us (%s); asking again", message.reason)
                self._forget_home(REFUSED_RETRY_S)
                return True
            return False
        if isinstance(message, Welcome):
            return True
        if isinstance(message, Refused):
            log.info("a frontend refused the registration (%s); asking again", message.reason)
            self._drop(connection, None, retry_s=REFUSED_RETRY_S)
            return True
        if isinstance(message, Shutdown):  # a frontend stopping: only that link ends
            self._drop(connection, None)
            return True
        return False

    def _wait(self, deadline: float | None, now: float) -> bool:
        """Wait for any connection to be readable (or the next redial); read what came.
        False when home closed."""
        waits = []
        if self._register is not None:  # links dial only once home welcomed the worker
            waits = [link.next_dial - now for link in self._links if link.connection is None]
            if self._home is None:
                waits.append(self._home_link.next_dial - now)
        elif self._home is None:
            return False
        if deadline is not None:
            waits.append(deadline - now)
        timeout = max(0.0, min(waits)) if waits else None
        connections = self._connections()
        readable, _, _ = select.select(connections, [], [], timeout)
        for connection in readable:
            if connection.pump():
                continue
            if connection is not self._home:
                self._drop(connection, "its frontend closed the connection")
            elif self._register is None:  # gone before it welcomed us
                return False
            else:
                self._lose_home()
        return True

    # -- links -----------------------------------------------------------------------------

    def _dial_all(self) -> None:
        self._redial(time.monotonic())

    def _redial(self, now: float) -> None:
        if self._register is None:
            return
        if self._home is None and now >= self._home_link.next_dial:
            self._dial_home(now)
        for link in self._links:
            if link.connection is None and now >= link.next_dial:
                link.next_dial = now + REDIAL_INTERVAL_S
                connection = WorkerConnection.connect_once(link.address)
                if connection is None:
                    continue
                try:
                    connection.send(replace(self._register, secret=self._ticket))
                except OSError:
                    connection.close()
                    continue
                link.connection = connection

    def _dial_home(self, now: float) -> None:
        """A new control process may listen: register there again, with the ticket (its
        answer is handled in `_link_message`; `_home_link.connection` marks it awaited)."""
        assert self._register is not None
        self._home_link.next_dial = now + HOME_REDIAL_S
        connection = WorkerConnection.connect_once(self._home_link.address)
        if connection is None:
            return
        try:
            connection.send(replace(self._register, secret=self._ticket))
        except OSError:
            connection.close()
            return
        self._home = self._home_link.connection = connection

    def _drop(self, connection: WorkerConnection, why: str | None, retry_s: float = 0.0) -> None:
        for link in self._links:
            if link.connection is connection:
                link.connection = None
                link.next_dial = time.monotonic() + retry_s
                if why is not None:
                    log.info("link to %s closed: %s", link.address, why)
        connection.close()
        if self._current is connection:
            self._current = self._home
