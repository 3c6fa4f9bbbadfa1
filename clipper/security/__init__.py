"""Authentication (admin and query bearer tokens) and TLS for the HTTP APIs."""

from __future__ import annotations

from clipper.security.auth import AdminAuth, QueryTokenGuard, bearer_token
from clipper.security.startup import (
    check_bind,
    is_loopback,
    prepare_admin_token,
    private_state_dir,
)
from clipper.security.tls import client_verify, scheme, server_ssl_context, tls_files
from clipper.security.tokens import (
    AdminTokenFile,
    admin_token_path,
    ensure_admin_token,
    hash_token,
    new_token,
    read_admin_token,
    write_admin_token,
)

__all__ = [
    "AdminAuth",
    "AdminTokenFile",
    "QueryTokenGuard",
    "admin_token_path",
    "bearer_token",
    "check_bind",
    "client_verify",
    "ensure_admin_token",
    "hash_token",
    "is_loopback",
    "new_token",
    "prepare_admin_token",
    "private_state_dir",
    "read_admin_token",
    "scheme",
    "server_ssl_context",
    "tls_files",
    "write_admin_token",
]
