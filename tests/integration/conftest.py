"""Fixtures that start real servers and workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import ServerHandle, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    """A fresh server with an empty state directory."""
    with running_server(tmp_path) as handle:
        yield handle
