"""The CLI's admin and query clients, built from `Settings`.

The clients (httpx) load on first use: `clipper start` in the foreground never needs them,
and the server's start-up time counts from the process's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clipper.core.config import Settings

if TYPE_CHECKING:
    from clipper.client import AdminClient, QueryClient

__all__ = ["admin_client", "query_client"]


def admin_client(settings: Settings) -> AdminClient:
    """A client of the admin API that `settings` describe."""
    from clipper.client import AdminClient

    return AdminClient.from_settings(settings)


def query_client(settings: Settings, token: str | None) -> QueryClient:
    """A client of the query API that `settings` describe, with an optional query token."""
    from clipper.client import QueryClient

    return QueryClient.from_settings(settings, token=token)
