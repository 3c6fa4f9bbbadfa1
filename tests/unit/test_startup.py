"""A server's start-up: what it imports, and the garbage collector paused while it starts."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper import server as server_module
from clipper.core.config import Settings
from clipper.core.process_memory import pause_collector, resume_collector
from clipper.server import ClipperServer

# Loaded when a feature needs them, never to become ready: building model environments
# (packaging), `clipper dashboard --open` (webbrowser), WebSockets, which no app has,
# OpenTelemetry (only with otel_endpoint set).
NOT_AT_START = ("packaging", "webbrowser", "websockets", "opentelemetry")


def modules_after(script: str) -> set[str]:
    """The top-level packages imported by `script`, run in a fresh interpreter."""
    script += "\nimport sys; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_server_and_cli_import_nothing_that_starting_does_not_need() -> None:
    loaded = modules_after("import clipper.cli, clipper.cli.commands, clipper.server")

    assert loaded.isdisjoint(NOT_AT_START), loaded & set(NOT_AT_START)


def test_the_admin_http_server_loads_without_a_websocket_implementation() -> None:
    script = (
        "from clipper.http.uvicorn_host import EmbeddedServer, bind_socket\n"
        "EmbeddedServer(lambda *args: None, bind_socket('127.0.0.1', 0)).config.load()"
    )

    assert "websockets" not in modules_after(script)


@pytest.fixture
def collector() -> Iterator[None]:
    """Leaves the collector on and nothing frozen, whatever the test did."""
    yield
    gc.unfreeze()
    gc.enable()


@pytest.mark.usefixtures("collector")
def test_pausing_and_resuming_the_collector() -> None:
    pause_collector()
    assert not gc.isenabled()

    resume_collector()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
async def test_a_started_server_freezes_its_objects_and_resumes_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "STARTUP_FREEZE_DELAY_S", 0.0)
    server = ClipperServer(Settings(state_dir=tmp_path))
    pause_collector()

    await server._end_startup()

    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
