"""Bearer tokens: the admin token file and the hashes that query tokens are stored as.

The admin token lives in `<state_dir>/admin_token`, mode 0600, written atomically (a
temporary file renamed over it), so a reader sees the old token or the new one, never a
half-written file. Query tokens are never stored: the registry keeps their SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ADMIN_TOKEN_FILE",
    "AdminTokenFile",
    "admin_token_path",
    "ensure_admin_token",
    "hash_token",
    "new_token",
    "read_admin_token",
    "write_admin_token",
]

ADMIN_TOKEN_FILE = "admin_token"
_TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) that a token is stored and compared as."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def admin_token_path(state_dir: Path) -> Path:
    """`<state_dir>/admin_token`."""
    return state_dir / ADMIN_TOKEN_FILE


def read_admin_token(state_dir: Path) -> str | None:
    """The admin token of a cluster, or None if its file is missing or empty."""
    try:
        token = admin_token_path(state_dir).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return token or None


def write_admin_token(state_dir: Path, token: str | None = None) -> str:
    """Write `token` (default: a new one) as the admin token, mode 0600; returns it."""
    token = token if token is not None else new_token()
    state_dir.mkdir(parents=True, exist_ok=True)
    path = admin_token_path(state_dir)
    temporary = path.with_name(f".{ADMIN_TOKEN_FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask; this is not
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return token


def ensure_admin_token(state_dir: Path) -> tuple[str, bool]:
    """The cluster's admin token, created if there is none; (token, created)."""
    existing = read_admin_token(state_dir)
    if existing is not None:
        return existing, False
    return write_admin_token(state_dir), True


@dataclass(frozen=True, slots=True)
class _Stamp:
    inode: int
    mtime_ns: int
    size: int


class AdminTokenFile:
    """The admin token as the server sees it: re-read whenever the file changes.

    `clipper token rotate` replaces the file; the next request is checked against the new
    token. A missing file means no token is valid (every request gets 401).
    """

    def __init__(self, state_dir: Path) -> None:
        self._path = admin_token_path(state_dir)
        self._stamp: _Stamp | None = None
        self._token: bytes | None = None

    def current(self) -> bytes | None:
        """The token now in the file (as bytes, for `hmac.compare_digest`), or None."""
        try:
            stat = self._path.stat()
        except OSError:
            self._stamp, self._token = None, None
            return None
        stamp = _Stamp(stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            text = read_admin_token(self._path.parent)
            self._token = text.encode() if text is not None else None
            self._stamp = stamp
        return self._token
