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

Frontends outlive the control process. A control process starting on a state directory
whose frontends still run (its predecessor was killed) adopts each one that answers on its
peer socket with the same count and settings (`digest`), watching it through a pidfd
(`AdoptedProcess`) instead of starting it; one of other settings is stopped first.

`restart_all` is the rolling restart (`clipper restart --frontends`): one frontend at a
time, a successor process is started holding the old one's listening query socket (handed
over the peer socket), the old one is stopped gracefully (it drains its keep-alive
connections; see `process.py`), the replicas attach to the successor, and only then does
it serve queries (connections the kernel hashes to that socket meanwhile wait in its
queue, never reset). The spare is replaced last, so every process runs the code installed
now.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.core.processes import AdoptedProcess
from clipper.frontends.metrics_merge import merge_expositions
from clipper.frontends.peer import (
    PeerHandler,
    PeerUnreachable,
    ask_peer,
    ask_peer_fds,
    serve_peer,
)
from clipper.rpc.fanout import frontend_peer_path, frontend_rpc_address
from clipper.rpc.socket_dir import make_socket_dir, remove_socket_dir

__all__ = ["FrontendSupervisor", "settings_digest"]

log = logging.getLogger("clipper.frontends")
STARTUP_TIMEOUT_S = 60.0
FAST_EXIT_S = 1.0
RESTART_BACKOFF_S = 1.0
STOP_GRACE_S = 15.0
SYNC_TIMEOUT_S = 1.0
ATTACH_TIMEOUT_S = 10.0
"""How long a successor waits for its predecessor's replicas before serving anyway."""


class _Process(Protocol):
    """A frontend process: one we started, or one adopted (`AdoptedProcess`)."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    async def wait(self) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


@dataclass(slots=True)
class _Frontend:
    index: int
    process: _Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    adopted: bool = False


def settings_digest(settings: Settings, count: int) -> str:
    """A fingerprint of the settings frontends are started with (and their count)."""
    text = json.dumps([json.loads(settings.model_dump_json()), count], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        self._digest = settings_digest(settings, count)
        self._restarting = asyncio.Lock()

    async def start(self) -> None:
        """Adopt the frontends an earlier control process left running (same settings),
        start the others, and wait until each answers on its peer socket; then watch them."""
        make_socket_dir(self._state_dir)
        self._peer = await serve_peer(frontend_peer_path(self._state_dir, None), self._answer)
        await self._adopt()
        for frontend in self._frontends:
            if frontend.process is None:
                self._assign(frontend, await self._start_process())
        self._spare = await self._start_process()
        await asyncio.gather(*(self._wait_ready(frontend) for frontend in self._frontends))
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(f)) for f in self._frontends]

    async def _adopt(self) -> None:
        """Take over the running frontends of this state directory that serve our settings;
        stop (and wait for) those that serve others."""
        stale: list[AdoptedProcess] = []
        for frontend in self._frontends:
            path = frontend_peer_path(self._state_dir, frontend.index)
            try:
                stats = await ask_peer(path, {"op": "stats"}, timeout_s=1.0)
                process = AdoptedProcess(int(stats["pid"]))
            except (PeerUnreachable, ProcessLookupError, KeyError, ValueError):
                continue
            if stats.get("digest") == self._digest and stats.get("count") == len(self._frontends):
                frontend.process, frontend.started_at = process, time.monotonic()
                frontend.adopted = True
                log.info("frontend %d adopted (pid %d)", frontend.index, process.pid)
            else:
                log.warning("frontend %d (pid %d) serves other settings; stopping it",
                            frontend.index, process.pid)  # fmt: skip
                process.terminate()
                stale.append(process)
        for process in stale:
            await _stop(process)

    async def _start_process(self, pass_fds: tuple[int, ...] = ()) -> asyncio.subprocess.Process:
        """A frontend process, importing its modules, then waiting for its index."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clipper.frontends",
            "--count", str(len(self._frontends)), "--parent-pid", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, pass_fds=pass_fds,
        )  # fmt: skip

    def _assign(
        self, frontend: _Frontend, process: asyncio.subprocess.Process, **extra: Any
    ) -> None:
        """Make `process` frontend `frontend.index` (its settings and index on stdin;
        `extra`: `query_fd`, `successor`)."""
        assert process.stdin is not None
        settings = json.loads(self._settings.model_dump_json())
        assignment = {"index": frontend.index, "settings": settings, "digest": self._digest}
        process.stdin.write((json.dumps({**assignment, **extra}) + "\n").encode())
        process.stdin.close()
        frontend.process, frontend.started_at = process, time.monotonic()
        frontend.adopted = False
        log.info("frontend %d started (pid %d)", frontend.index, process.pid)

    async def _replace(self, frontend: _Frontend) -> None:
        """The spare becomes the frontend (a fresh process if the spare is gone); a new
        spare starts."""
        spare, self._spare = self._spare, None
        if spare is None or spare.returncode is not None:
            spare = await self._start_process()
        self._assign(frontend, spare)
        self._spare = await self._start_process()

    async def _wait_ready(self, frontend: _Frontend) -> dict[str, Any]:
        """Until the frontend's own process answers on its peer socket; its stats."""
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
                stats = await ask_peer(path, {"op": "stats"}, timeout_s=1.0)
                if process is None or stats.get("pid") == process.pid:  # not a predecessor
                    return stats
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
            if frontend.process is not process:  # replaced by a rolling restart
                continue
            log.error("frontend %d (pid %d) exited with code %d; restarting it",
                      frontend.index, process.pid, code)  # fmt: skip
            if time.monotonic() - frontend.started_at < FAST_EXIT_S:
                await asyncio.sleep(RESTART_BACKOFF_S)
            frontend.restarts += 1
            await self._replace(frontend)

    async def aclose(self) -> None:
        """Stop watching, SIGTERM every frontend, wait (SIGKILL past the grace); then
        remove the sockets' private directory, if they have one."""
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
            await _stop(process)
        remove_socket_dir(self._state_dir)

    async def restart_all(self) -> list[dict[str, Any]]:
        """The rolling restart (see the module's docstring); `status()` after it."""
        async with self._restarting:
            for frontend in self._frontends:
                if not self._stopping:
                    await self._restart_one(frontend)
            if not self._stopping:
                await self._replace_spare()
        return self.status()

    async def _restart_one(self, frontend: _Frontend) -> None:
        old = frontend.process
        path = frontend_peer_path(self._state_dir, frontend.index)
        try:
            before = await ask_peer(path, {"op": "stats"})
            _, fds = await ask_peer_fds(path, {"op": "listener"})
        except PeerUnreachable as exc:
            raise ClipperError(f"query frontend {frontend.index} is not answering: {exc}") from exc
        if not fds:
            raise ClipperError(f"query frontend {frontend.index} handed over no socket")
        try:
            successor = await self._start_successor(frontend, fds)
            if old is not None and old.returncode is None:
                old.terminate()
                await _stop(old)
            await self._wait_replicas(path, int(before.get("replicas", 0)))
            await ask_peer(path, {"op": "serve"})
        finally:
            for fd in fds:
                os.close(fd)
        log.info("frontend %d restarted (pid %d)", frontend.index, successor.pid)

    async def _start_successor(
        self, frontend: _Frontend, fds: list[int]
    ) -> asyncio.subprocess.Process:
        """The successor of `frontend`, answering on its peer socket. On a failure the old
        process is stopped too (the successor has taken its socket paths), and the
        watcher replaces it from the spare as after any exit."""
        old, successor = frontend.process, None
        try:
            successor = await self._start_process(pass_fds=tuple(fds))
            self._assign(frontend, successor, query_fd=fds[0], successor=True)
            await self._wait_ready(frontend)
        except (ClipperError, OSError):
            if successor is not None and successor.returncode is None:
                successor.kill()
            frontend.process = old
            if old is not None:
                old.terminate()
            raise
        return successor

    async def _wait_replicas(self, path: Any, count: int) -> None:
        """Until the successor at `path` has `count` replicas attached (bounded)."""
        deadline = time.monotonic() + ATTACH_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(PeerUnreachable):
                if int((await ask_peer(path, {"op": "stats"}))["replicas"]) >= count:
                    return
            await asyncio.sleep(0.02)
        log.warning("%s: not every replica attached within %.0f s; serving anyway",
                    path.name, ATTACH_TIMEOUT_S)  # fmt: skip

    async def _replace_spare(self) -> None:
        """A spare of the code installed now (the old one exits as its stdin closes)."""
        old, self._spare = self._spare, await self._start_process()
        if old is not None and old.stdin is not None:
            old.stdin.close()
            await _stop(old)

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
                "adopted": f.adopted,
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


async def _stop(process: _Process) -> None:
    """Wait for `process` to exit (it was asked to); SIGKILL past `STOP_GRACE_S`."""
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    except TimeoutError:
        process.kill()
        await process.wait()
