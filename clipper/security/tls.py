"""TLS for the query and admin APIs: the server's SSL context and what clients verify."""

from __future__ import annotations

import ssl
from pathlib import Path

from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError

__all__ = ["client_context", "client_verify", "scheme", "server_ssl_context", "tls_files"]


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The context both HTTP ports serve with, or None without TLS settings.

    Raises ClipperError (before any port is bound) when only one of the certificate and
    the key is set, or when they cannot be loaded.
    """
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ClipperError("TLS needs both tls_cert_file and tls_key_file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ClipperError(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from exc
    return context


def tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """(certificate, key) when both are set: what the gRPC port serves TLS with."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    return None if cert is None or key is None else (cert, key)


def scheme(settings: Settings) -> str:
    """`https` when the server has a certificate, else `http`."""
    return "https" if settings.tls_cert_file is not None else "http"


def client_verify(settings: Settings) -> ssl.SSLContext | bool:
    """What a client verifies the server with: the CA file, else the server's own
    certificate (self-signed), else True (the system's CAs)."""
    path: Path | None = settings.tls_ca_file or settings.tls_cert_file
    return True if path is None else client_context(path)


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts `ca_file` (a CA bundle or a self-signed certificate)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ClipperError(f"cannot load the CA file {ca_file}: {exc}") from exc
