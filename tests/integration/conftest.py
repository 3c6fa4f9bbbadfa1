"""Fixtures that start real servers and workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle


@pytest.fixture
def configured_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """`configured_server(name="test", **settings)`: start a server on free ports with its own
    state directory and these `Settings` fields (`max_body_bytes=1024`,
    `cors_allowed_origins=[...]`), ready when it returns; each is stopped at teardown.

    `tls=True` serves https with a self-signed certificate made for the server;
    `configured_server.restart(handle)` starts it again over the same state directory."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`configured_server` for servers that every test of a module shares."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def server(configured_server: ServerFactory) -> ServerHandle:
    """A fresh server with an empty state directory and the default settings."""
    return configured_server()
