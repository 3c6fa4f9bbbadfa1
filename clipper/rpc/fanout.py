"""Where the query frontends of one server listen for workers, and the ticket a worker
registers there with (`Settings.frontends` > 1).

With several query frontends, every replica serves every frontend: its worker registers
with the control process as before (its one-time credential, heartbeats, `shutdown`) and
then dials each frontend's Unix socket (`frontend_rpc_address`), registering there with a
ticket: an HMAC of its (model, version, replica) under the cluster's secret, handed to the
worker with its credential over the same pipe. A frontend recomputes it (it reads the
secret from the state directory), so a ticket admits exactly one replica's connections and
cannot be made without the secret; it stays valid for the replica's life, so the worker
reconnects to a restarted frontend with it. The messages on these connections are the
protocol's own (`clipper.rpc.protocol`); none is added.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from clipper.rpc.protocol import Register
from clipper.rpc.secret import secret_matches
from clipper.rpc.socket_dir import FRONTENDS_DIR, socket_dir

__all__ = [
    "FRONTENDS_DIR",
    "TICKET_SEPARATOR",
    "TicketCheck",
    "frontend_peer_path",
    "frontend_rpc_address",
    "frontend_rpc_path",
    "frontend_ticket",
]

TICKET_SEPARATOR = "\n"
"""Between the credential and the frontend ticket in the worker's credential pipe."""
WRONG_TICKET = "missing or wrong frontend ticket"


def frontend_rpc_path(state_dir: Path, index: int) -> Path:
    """The Unix socket frontend `index` takes worker connections on (fixed across its
    restarts, so workers redial the same path; in `clipper.rpc.socket_dir.socket_dir`)."""
    return socket_dir(state_dir) / f"{index}.rpc.sock"


def frontend_rpc_address(state_dir: Path, index: int) -> str:
    """`unix://...` of `frontend_rpc_path`."""
    return f"unix://{frontend_rpc_path(state_dir, index)}"


def frontend_peer_path(state_dir: Path, index: int | None) -> Path:
    """The Unix socket of a frontend's peer requests (None: the control process's)."""
    name = "control" if index is None else str(index)
    return socket_dir(state_dir) / f"{name}.peer.sock"


def frontend_ticket(secret: str, model: str, version: str, replica: int) -> str:
    """The ticket replica (model, version, replica) registers with at every frontend."""
    message = f"clipper-frontend:{model}:{version}:{replica}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class TicketCheck:
    """A frontend's RPC authenticator: admits a registration carrying its replica's
    `frontend_ticket` (None), else says why not."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __call__(self, message: Register) -> str | None:
        expected = frontend_ticket(self._secret, message.model, message.version, message.replica)
        return None if secret_matches(message.secret, expected) else WRONG_TICKET
