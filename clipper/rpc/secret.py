"""The per-cluster worker secret: workers present it when they register.

The server keeps one secret per cluster in `<state_dir>/worker.secret` (mode 0600, made at
first start) for workers it does not start: it registers only workers of containerless
versions (clipper.rpc.credentials). A worker started by hand reads it from
`CLIPPER_WORKER_SECRET`; the workers the server starts never see it: each registers with a
one-time credential of its own, handed over a pipe. The secret is never logged.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SECRET_ENV", "SECRET_FILE", "load_or_create_secret", "secret_matches"]

SECRET_ENV = "CLIPPER_WORKER_SECRET"
SECRET_FILE = "worker.secret"
_SECRET_BYTES = 32


def load_or_create_secret(state_dir: Path) -> str:
    """The cluster's secret from `state_dir`, created (0600, atomically) when missing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SECRET_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(_SECRET_BYTES))
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty; delete it to make a new worker secret")
    return secret


def secret_matches(presented: object, expected: str) -> bool:
    """Constant-time comparison; anything but a string never matches."""
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
