"""The control process's side of several frontends: start them, restart one that exits
at once, list them, merge their metrics.

A frontend that exits (a crash, a SIGKILL) is replaced at once on the same ports and
sockets by the spare: one more frontend process, started ahead with its modules imported,
waiting for its index (`python -m clipper.frontends`); a new spare starts behind it. So
the replacement serves within the time it takes to bind its sockets and read the registry
(about 0.5 s here, under load). Only the queries in flight on the lost one fail (their
clients see the connection close), the kernel sends new connections to the survivors
meanwhile, and no replica restarts: each worker redials the new frontend's socket
(`clipper.worker.fanout`). One that exits within `FAST_EXIT_S` of its start waits
`RESTART_BACKOFF_S` first, so a frontend that cannot start does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.frontends.metrics_merge import merge_expositions
from clipper.frontends.peer import PeerHandler, PeerUnreachable, ask_peer, serve_peer
from clipper.rpc.fanout import frontend_peer_path, frontend_rpc_address

__all__ = ["FrontendSupervisor"]

log = logging.getLogger("clipper.frontends")
STARTUP_TIMEOUT_S = 60.0
FAST_EXIT_S = 1.0
RESTART_BACKOFF_S = 1.0
STOP_GRACE_S = 15.0
SYNC_TIMEOUT_S = 1.0


@dataclass(slots=True)
class _Frontend:
    index: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0


class FrontendSupervisor:
    """Frontends 0..count-1 of one server (see the module's docstring)."""

    def __init__(self, settings: Settings, count: int, own_metrics: Callable[[], bytes]) -> None:
        """`own_metrics()` is the control process's exposition text."""
        self._settings = settings
        self._own_metrics = own_metrics
        self.on_policy_states: Callable[[dict[str, Any]], None] | None = None
        """Given frontend 0's policy states (clipper.frontends.policy_sharing)."""
        self._state_dir = settings.resolved_state_dir()
        self._frontends = [_Frontend(index) for index in range(count)]
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []
        self._peer: asyncio.Server | None = None
        self._spare: asyncio.subprocess.Process | None = None
        self.handlers: dict[str, PeerHandler] = {}
        """More ops of the control process's peer socket (`wake`: control_signals.py)."""

    async def start(self) -> None:
        """Start every frontend and wait until each answers on its peer socket; then
        watch them."""
        self._peer = await serve_peer(frontend_peer_path(self._state_dir, None), self._answer)
        for frontend in self._frontends:
            self._assign(frontend, await self._start_process())
        self._spare = await self._start_process()
        await asyncio.gather(*(self._wait_ready(frontend) for frontend in self._frontends))
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(f)) for f in self._frontends]

    async def _start_process(self) -> asyncio.subprocess.Process:
        """A frontend process, importing its modules, then waiting for its index."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clipper.frontends",
            "--count", str(len(self._frontends)), "--parent-pid", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip

    def _assign(self, frontend: _Frontend, process: asyncio.subprocess.Process) -> None:
        """Make `process` frontend `frontend.index` (its settings and index on stdin)."""
        assert process.stdin is not None
        settings = json.loads(self._settings.model_dump_json())
        line = json.dumps({"index": frontend.index, "settings": settings}) + "\n"
        process.stdin.write(line.encode())
        process.stdin.close()
        frontend.process, frontend.started_at = process, time.monotonic()
        log.info("frontend %d started (pid %d)", frontend.index, process.pid)

    async def _replace(self, frontend: _Frontend) -> None:
        """The spare becomes the frontend (a fresh process if the spare is gone); a new
        spare starts."""
        spare, self._spare = self._spare, None
        if spare is None or spare.returncode is not None:
            spare = await self._start_process()
        self._assign(frontend, spare)
        self._spare = await self._start_process()

    async def _wait_ready(self, frontend: _Frontend) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        path = frontend_peer_path(self._state_dir, frontend.index)
        while True:
            process = frontend.process
            if process is not None and process.returncode is not None:
                raise ClipperError(
                    f"query frontend {frontend.index} exited with code {process.returncode} "
                    "while starting (see the server's log)"
                )
            with contextlib.suppress(PeerUnreachable):
                await ask_peer(path, {"op": "stats"}, timeout_s=1.0)
                return
            if time.monotonic() > deadline:
                raise ClipperError(f"query frontend {frontend.index} did not start in time")
            await asyncio.sleep(0.05)

    async def _watch(self, frontend: _Frontend) -> None:
        """Restart the frontend whenever it exits, until `aclose`."""
        while True:
            process = frontend.process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            log.error("frontend %d (pid %d) exited with code %d; restarting it",
                      frontend.index, process.pid, code)  # fmt: skip
            if time.monotonic() - frontend.started_at < FAST_EXIT_S:
                await asyncio.sleep(RESTART_BACKOFF_S)
            frontend.restarts += 1
            await self._replace(frontend)

    async def aclose(self) -> None:
        """Stop watching, SIGTERM every frontend, wait (SIGKILL past the grace)."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        if self._peer is not None:
            self._peer.close()
        processes = [f.process for f in self._frontends if f.process is not None]
        if self._spare is not None:
            processes.append(self._spare)
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def sync(self) -> None:
        """Have every running frontend read the registry now (at most `SYNC_TIMEOUT_S`;
        one that does not answer catches up by its own polling)."""

        async def one(frontend: _Frontend) -> None:
            path = frontend_peer_path(self._state_dir, frontend.index)
            with contextlib.suppress(PeerUnreachable):
                await ask_peer(path, {"op": "refresh"}, timeout_s=SYNC_TIMEOUT_S)

        await asyncio.gather(*(one(frontend) for frontend in self._frontends))

    def status(self) -> list[dict[str, Any]]:
        """Each frontend's index, pid, whether it runs, its restarts so far, and the
        address its workers dial (a containerless worker's `--frontend`)."""
        return [
            {
                "index": f.index,
                "rpc_address": frontend_rpc_address(self._state_dir, f.index),
                "pid": f.process.pid if f.process is not None else None,
                "alive": f.process is not None and f.process.returncode is None,
                "restarts": f.restarts,
            }
            for f in self._frontends
        ]

    async def stats(self) -> list[dict[str, Any]]:
        """`status()` with each frontend's own `stats()` (requests, apps, versions)."""
        rows = self.status()
        for row in rows:
            with contextlib.suppress(PeerUnreachable):
                stats = await ask_peer(frontend_peer_path(self._state_dir, row["index"]),
                                       {"op": "stats"}, timeout_s=2.0)  # fmt: skip
                row.update(stats)
        return rows

    async def metrics_page(self) -> bytes:
        """The control process's metrics and every reachable frontend's, merged."""
        texts: list[bytes | str] = [self._own_metrics()]
        for frontend in self._frontends:
            path = frontend_peer_path(self._state_dir, frontend.index)
            with contextlib.suppress(PeerUnreachable):
                texts.append(str((await ask_peer(path, {"op": "metrics"}))["text"]))
        return merge_expositions(texts)

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get(str(request.get("op")))
        if handler is not None:
            return await handler(request)
        if request.get("op") == "metrics":
            return {"text": (await self.metrics_page()).decode()}
        if request.get("op") == "policy_states":
            if self.on_policy_states is not None:
                self.on_policy_states(dict(request["states"]))
            return {}
        return {"frontends": await self.stats()}
