"""The server's lifecycle: a failure at any step of its start releases everything acquired
before it (ports, listeners, the registry, the RPC socket file, tasks), so the same server
starts again at once on the same ports and state directory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper import server as server_module
from clipper.control.store import Registry
from clipper.core.config import Settings
from clipper.server import RPC_SOCKET_NAME, ClipperServer
from tests.integration.cluster import free_port

pytestmark = pytest.mark.integration


class StepFailed(Exception):
    """The failure injected into one step of the start."""


def _settings(state_dir: Path) -> Settings:
    """One frontend whatever CLIPPER_FRONTENDS says: the steps are the one process's."""
    return Settings(
        state_dir=state_dir, host="127.0.0.1", rpc_host="127.0.0.1",
        query_port=free_port(), admin_port=free_port(), rpc_port=free_port(),
        grpc_port=free_port(), admin_auth=False, frontends=1,
    )  # fmt: skip


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise StepFailed("injected")


async def _afail(*args: Any, **kwargs: Any) -> Any:
    raise StepFailed("injected")


async def _fail_after_a_while(*args: Any) -> None:
    await asyncio.sleep(1.0)  # the server is ready by then (the test checks it answered)
    raise StepFailed("injected while serving")


def _fail_on_second_call(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise StepFailed("injected")
        return real(*args, **kwargs)

    return wrapper


# (step, how to make it fail): every step of ClipperServer._start in order, then a port's
# serving task that fails while the server serves (background tasks are restarted instead,
# see test_a_failing_background_task_is_restarted_and_the_server_serves_on).
STEPS: dict[str, Callable[[pytest.MonkeyPatch, ClipperServer], None]] = {
    "security": lambda mp, s: mp.setattr(s, "_prepare_security", _fail),
    "admin-socket": lambda mp, s: mp.setattr(
        server_module, "bind_socket", _fail_on_second_call(server_module.bind_socket)
    ),
    "rpc-listener": lambda mp, s: mp.setattr(server_module, "start_rpc_listener", _afail),
    "registry": lambda mp, s: mp.setattr(Registry, "open", _fail),
    "placement": lambda mp, s: mp.setattr(s, "_open_placement", _afail),
    "local-rpc": lambda mp, s: mp.setattr(server_module, "start_unix_rpc_listener", _afail),
    "service": lambda mp, s: mp.setattr(server_module, "ClusterService", _fail),
    "registry-refresh": lambda mp, s: mp.setattr(server_module, "reload_guard", _fail),
    "background": lambda mp, s: mp.setattr(s, "_start_background", _fail),
    "grpc": lambda mp, s: mp.setattr(server_module, "start_grpc", _afail),
    "http": lambda mp, s: mp.setattr(s, "_start_http", _fail),
    "serving": lambda mp, s: mp.setattr(
        server_module.EmbeddedServer, "run_on_socket", _fail_after_a_while
    ),
}


def _holds(exc: BaseException, wanted: type[BaseException]) -> bool:
    """Whether `exc` is, or its exception group holds, a `wanted`."""
    inner: tuple[BaseException, ...] = getattr(exc, "exceptions", ())  # an exception group's
    return isinstance(exc, wanted) or any(_holds(each, wanted) for each in inner)


@pytest.fixture
def closed_registries(monkeypatch: pytest.MonkeyPatch) -> list[Registry]:
    """Every Registry closed during the test."""
    closed: list[Registry] = []
    real_close = Registry.close

    def close(self: Registry) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(Registry, "close", close)
    return closed


async def _serve_until_ready(server: ClipperServer) -> asyncio.Task[None]:
    running = asyncio.create_task(server.run())
    url = f"http://127.0.0.1:{server.settings.query_port}/healthz"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            if running.done():
                break
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url, timeout=1)).status_code == 200:
                    return running
            await asyncio.sleep(0.05)
    return running


@pytest.mark.parametrize("step", STEPS)
async def test_a_failing_step_releases_everything_acquired_before_it(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_registries: list[Registry]
) -> None:
    settings = _settings(tmp_path)
    failing = ClipperServer(settings)
    with monkeypatch.context() as patch:
        STEPS[step](patch, failing)
        running = await _serve_until_ready(failing)
        assert (step == "serving") != running.done()  # only "serving" gets to serve
        with pytest.raises(BaseException) as raised:  # noqa: PT011 (checked below)
            await asyncio.wait_for(running, 60)
    assert _holds(raised.value, StepFailed), raised.value
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not (tmp_path / RPC_SOCKET_NAME).exists()
    opened = step not in ("security", "admin-socket", "rpc-listener", "registry")
    assert len(closed_registries) == (1 if opened else 0)

    again = ClipperServer(settings)  # same ports, same state directory
    serving = await _serve_until_ready(again)
    assert not serving.done(), "the server did not start again after the failed start"
    again.stopping.set()
    await asyncio.wait_for(serving, 60)
    assert not (tmp_path / RPC_SOCKET_NAME).exists()


async def test_a_failing_background_task_is_restarted_and_the_server_serves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ClipperServer(_settings(tmp_path))
    failures = []

    async def rotate_logs_fails() -> None:
        failures.append(1)
        raise OSError(24, "Too many open files")  # what log rotation met at the fd limit

    monkeypatch.setattr(server, "_rotate_logs", rotate_logs_fails)
    running = await _serve_until_ready(server)
    await asyncio.sleep(2.0)

    assert not running.done(), "a failing background task took the server down"
    assert len(failures) >= 2  # started again after each failure
    server.stopping.set()
    await asyncio.wait_for(running, 60)
