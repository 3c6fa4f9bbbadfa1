"""Fixtures that start real servers and workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import ServerHandle, new_server_handle, settings_env

ServerFactory = Callable[..., ServerHandle]


@pytest.fixture
def configured_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """`configured_server(**settings)`: start a server on free ports with its own state
    directory and these `Settings` fields (`max_body_bytes=1024`, `cors_allowed_origins=[...]`;
    `name=` names the cluster), ready when it returns; every one is stopped at teardown."""
    started: list[ServerHandle] = []

    def start(name: str = "test", **settings: object) -> ServerHandle:
        handle = new_server_handle(tmp_path / name / "state", name, **settings_env(**settings))
        started.append(handle)
        handle.start()
        return handle

    yield start
    for handle in reversed(started):
        handle.stop()


@pytest.fixture
def server(configured_server: ServerFactory) -> ServerHandle:
    """A fresh server with an empty state directory and the default settings."""
    return configured_server()
