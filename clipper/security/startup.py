"""Checks and set-up the server runs before it binds a port."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import TextIO

from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.security.tokens import admin_token_path, ensure_admin_token

__all__ = ["check_bind", "is_loopback", "prepare_admin_token", "private_state_dir"]

PRIVATE_UMASK = 0o077
"""What the server creates is its user's alone: directories 0700, files 0600."""


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (`localhost` included)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_bind(settings: Settings) -> None:
    """Refuse to serve the admin API without auth on a non-loopback address, unless
    `allow_insecure_bind` says so."""
    if settings.admin_auth or settings.allow_insecure_bind or is_loopback(settings.host):
        return
    raise ClipperError(
        f"refusing to bind {settings.host} with admin_auth off: anyone who reaches it could "
        "manage the cluster. Turn admin_auth on, bind 127.0.0.1, or set "
        "CLIPPER_ALLOW_INSECURE_BIND=true"
    )


def prepare_admin_token(settings: Settings, console: TextIO) -> None:
    """Create the admin token at first start. It is shown once, on `console` when that is a
    terminal; elsewhere only its file is named, so the token never lands in a log."""
    if not settings.admin_auth:
        return
    state_dir = settings.resolved_state_dir()
    token, created = ensure_admin_token(state_dir)
    if not created:
        return
    path = admin_token_path(state_dir)
    if console.isatty():
        print(f"Admin token (shown once; also in {path}, mode 0600):\n  {token}", file=console)
    else:
        print(f"Admin token created in {path} (mode 0600)", file=console)
    console.flush()


def private_state_dir(state_dir: Path) -> None:
    """Make the state directory (registry, tokens, logs, artifacts) its owner's alone: mode
    0700, which also closes what an earlier version left 0644 inside it, and the process's
    umask 077 for everything created from now on (workers inherit it)."""
    os.umask(PRIVATE_UMASK)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
