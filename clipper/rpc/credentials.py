"""Who may register as a worker: a one-time credential per replica the server starts, and
the cluster's secret only for workers of containerless versions.

A replica the server starts gets a credential made for exactly its (model, version,
replica) and accepted once: handed to the worker over a pipe, never in its environment or
on its command line, so a model cannot read it from `/proc/self/environ` and register as a
replica of another model (or a second replica of its own). The cluster's secret
(`clipper.rpc.secret`) is for workers the server does not start: it registers only workers
of versions the registry marks containerless.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from clipper.rpc.protocol import Register
from clipper.rpc.secret import secret_matches

__all__ = ["CLUSTER_SECRET_FOR_EXTERNAL_ONLY", "WRONG_CREDENTIAL", "ReplicaCredentials"]

WRONG_CREDENTIAL = "missing or wrong cluster secret"
CLUSTER_SECRET_FOR_EXTERNAL_ONLY = (
    "the cluster secret registers only workers of containerless versions; the server "
    "starts this version's replicas itself"
)
_TOKEN_BYTES = 32

ReplicaKey = tuple[str, str, int]  # (model, version, replica)


class ReplicaCredentials:
    """Issues and checks registrations; `is_external(model, version)` says whether a
    version is containerless (its workers are started by someone else)."""

    def __init__(self, cluster_secret: str, is_external: Callable[[str, str], bool]) -> None:
        self._cluster_secret = cluster_secret
        self._is_external = is_external
        self._issued: dict[ReplicaKey, str] = {}

    def issue(self, model: str, version: str, replica: int) -> str:
        """A fresh credential for this replica (an earlier one unused is void)."""
        token = secrets.token_hex(_TOKEN_BYTES)
        self._issued[(model, version, replica)] = token
        return token

    def check(self, message: Register) -> str | None:
        """None to admit the registration (a credential is used up), else why not."""
        key = (message.model, message.version, message.replica)
        issued = self._issued.get(key)
        if issued is not None and secret_matches(message.secret, issued):
            del self._issued[key]
            return None
        if secret_matches(message.secret, self._cluster_secret):
            if self._is_external(message.model, message.version):
                return None
            return CLUSTER_SECRET_FOR_EXTERNAL_ONLY
        return WRONG_CREDENTIAL
