"""One query-frontend process (`python -m clipper.frontends`): the query and gRPC ports
(SO_REUSEPORT, shared with the other frontends), its own data plane following the
registry, an RPC listener every replica dials (`clipper.rpc.fanout`) and a peer socket
(`peer.py`). It writes nothing to the registry but policy states, and only frontend 0
does: it owns every app's policy state (`policy_sharing.py`). Its payload log writes its own
JSONL files (`<state_dir>/payloads/frontend-<i>/`) and its tracing names it in each span's
resource (`clipper.frontend.index`, `process.pid`).

A frontend outlives its control process (a restarted one adopts it, `supervisor.py`).
Its stop (SIGTERM) is graceful: it stops accepting, answers each keep-alive connection's
next request with `connection: close` (`serve_http11`'s drain), and lets its replicas go
only once its HTTP connections are gone. A successor (a rolling restart) is handed its
predecessor's listening query socket (`listener`, over the peer socket), so connections
the kernel queued on it are never reset, and serves queries only once told `serve`, after
the predecessor has exited and the replicas have attached to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from clipper.control.policies import run_policy_flusher
from clipper.control.store import Registry
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError, InvalidInput
from clipper.core.input_limits import http_limits, input_limits
from clipper.core.open_files import connection_budget, raise_open_files_limit
from clipper.core.records import RegistrySnapshot
from clipper.core.supervision import supervised
from clipper.core.types import ModelId
from clipper.dataplane.dataplane import DataPlane
from clipper.dataplane.feedback import FeedbackRequest
from clipper.dataplane.model_serving import ModelServing
from clipper.frontend.clipper_api.query_api import ClipperQueryApi
from clipper.frontend.oip.grpc_server import GrpcConnectionLimits, start_grpc
from clipper.frontend.oip.rest import V2RestApi
from clipper.frontend.oip.service import InferenceService
from clipper.frontend.query_port import QueryPort
from clipper.frontends.follower import RegistryFollower
from clipper.frontends.frontend_signals import FrontendSignals
from clipper.frontends.peer import FDS_KEY, PeerUnreachable, ask_peer, serve_peer
from clipper.frontends.policy_sharing import PolicySharing, adopt_policy_states
from clipper.http.connection_gate import ConnectionGate
from clipper.http.cors import CorsPolicy
from clipper.http.http11 import serve_http11
from clipper.http.loop_polling import LoopPoller
from clipper.http.uvicorn_host import EmbeddedServer, bind_socket
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads import PayloadLog, SinkSettings
from clipper.rpc.fanout import TicketCheck, frontend_peer_path, frontend_rpc_path
from clipper.rpc.protocol import Register
from clipper.rpc.secret import load_or_create_secret
from clipper.rpc.server import DEFAULT_MAX_UNREGISTERED, WorkerChannel, start_unix_rpc_listener
from clipper.rpc.socket_dir import make_socket_dir
from clipper.security import QueryTokenGuard, server_ssl_context, tls_files
from clipper.tracing import open_tracing

if TYPE_CHECKING:
    from clipper.tracing.session import QueryTracing

__all__ = ["FrontendDataPlane", "FrontendServer", "answering_frontend"]

log = logging.getLogger("clipper.frontends")
SHUTDOWN_GRACE_S = 10.0
DRAIN_IDLE_S = 1.0
"""How long a stopping frontend waits for the next request of an idle keep-alive
connection (answered `connection: close`) before closing it."""


def answering_frontend(query_id: int, count: int) -> int:
    """The frontend that answered `query_id` (frontend i of `count` numbers i+1, i+1+count...)."""
    return (query_id - 1) % count


class FrontendDataPlane(DataPlane):
    """A frontend's data plane: its answers numbered so their query ids name it, and
    feedback on another frontend's answer handed to that frontend (its query log and
    policy learned from it)."""

    def __init__(self, metrics: ServerMetrics, cache_bytes: int, index: int, count: int,
                 settings: Settings) -> None:  # fmt: skip
        super().__init__(metrics, cache_bytes, query_ids=itertools.count(index + 1, count))
        self.index, self.count = index, count
        self._state_dir = settings.resolved_state_dir()

    async def update(self, app_name: str, request: FeedbackRequest) -> dict[str, Any]:
        if request.query_id is None:
            return await super().update(app_name, request)
        owner = answering_frontend(request.query_id, self.count)
        if owner == self.index:
            return await super().update(app_name, request)
        fields = {"app": app_name, "query_id": request.query_id, "uid": request.uid,
                  "label": request.label, "has_label": request.has_label,
                  "reward": request.reward}  # fmt: skip
        try:
            reply = await ask_peer(frontend_peer_path(self._state_dir, owner),
                                   {"op": "feedback", **fields})  # fmt: skip
        except PeerUnreachable as exc:
            raise InvalidInput(
                f"query_id {request.query_id} was answered by frontend {owner}, which is "
                f"restarting: its recent answers are gone ({exc})"
            ) from exc
        return dict(reply["reply"])

    async def update_here(self, app_name: str, request: FeedbackRequest) -> dict[str, Any]:
        """Feedback another frontend handed over: applied here, never forwarded."""
        return await DataPlane.update(self, app_name, request)


class FrontendServer:
    """Frontend `index` of `count` (see the module's docstring). `query_fd`: a listening
    query socket handed over by a predecessor, else one is bound; `successor`: serve
    queries only once told `serve`; `digest`: the supervisor's fingerprint of the settings,
    reported in `stats` (a restarted control process adopts only a frontend of its own)."""

    def __init__(
        self,
        settings: Settings,
        index: int,
        count: int,
        *,
        query_fd: int | None = None,
        successor: bool = False,
        digest: str = "",
    ) -> None:
        self.settings, self.index, self.count = settings, index, count
        self._query_fd, self._digest = query_fd, digest
        self._serve_now = asyncio.Event()
        if not successor:
            self._serve_now.set()
        self._query_sock: socket.socket | None = None
        self._channels: set[WorkerChannel] = set()
        self.state_dir = settings.resolved_state_dir()
        self.metrics = ServerMetrics()
        self.dataplane = FrontendDataPlane(
            self.metrics, settings.cache_bytes, index, count, settings
        )
        self.policies = PolicySharing(self.dataplane, self.state_dir, index, count)
        self.poller = LoopPoller(settings.server_spin_us / 1e6)
        self.query_guard = QueryTokenGuard()
        self.payloads = PayloadLog(
            SinkSettings(
                self.state_dir / "payloads" / f"frontend-{index}",
                settings.payload_log_max_bytes, settings.payload_log_backups,
                settings.payload_log_timeout_s,
                f"http://{settings.host}:{settings.query_port}", settings.cluster_name,
            ),
            settings.payload_log_buffer, self.metrics,
        )  # fmt: skip
        self.tracing: QueryTracing | None = None
        self.snapshot = RegistrySnapshot()
        self.signals = FrontendSignals(self.dataplane, frontend_peer_path(self.state_dir, None))
        self.stopping = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self._registry: Registry | None = None
        self._follower: RegistryFollower | None = None

    # -- the registry -------------------------------------------------------------------

    def _apply(self, snapshot: RegistrySnapshot) -> None:
        self.snapshot = snapshot
        removed = self.dataplane.apply(snapshot)
        self.payloads.apply(snapshot)
        registry = self._registry
        if registry is not None:
            self.query_guard.load(
                registry.query_auth_apps(), registry.query_token_scopes(), snapshot.links
            )
            self.signals.follow(registry)  # rollout splits, scale to zero
        for serving in removed:
            self._close_later(serving)

    def _close_later(self, serving: ModelServing) -> None:
        task = asyncio.get_running_loop().create_task(serving.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- replicas -----------------------------------------------------------------------

    def _on_register(self, channel: WorkerChannel, message: Register) -> str | None:
        model_id = ModelId(message.model, message.version)
        if self.dataplane.serving(model_id) is None and self._follower is not None:
            self._follower.refresh()  # a version newer than our last read
        refused = self.dataplane.attach(channel, message)
        if refused is None:
            self._channels.add(channel)
            self.signals.apply_splits()  # a rollout waiting for this replica
        return refused

    def _on_lost(self, channel: WorkerChannel) -> None:
        self._channels.discard(channel)
        self.dataplane.detach(channel, logged_elsewhere=True)

    # -- peer requests --------------------------------------------------------------------

    async def _peer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "stats":
            return self.stats()
        if op == "refresh" and self._follower is not None:  # the control process changed it
            self._follower.refresh()
            return {}
        if op == "metrics":
            return {"text": self.metrics.render().decode()}
        if op == "load":
            return self.signals.load()
        if op == "rollout_windows":
            return self.signals.rollout_windows(request)
        if op == "drain":
            return await self.signals.drain(request)
        if op == "listener":  # for a successor (a rolling restart): our query socket
            if self._query_sock is None:
                raise InvalidInput("this frontend has no query socket yet")
            return {FDS_KEY: [os.dup(self._query_sock.fileno())]}
        if op == "serve":  # a successor: the predecessor is gone, the replicas are here
            self._serve_now.set()
            return {}
        if op == "feedback":
            feedback = FeedbackRequest(
                request["query_id"], request.get("uid"), None, request.get("label"),
                bool(request.get("has_label")), request.get("reward"),
            )  # fmt: skip
            return {"reply": await self.dataplane.update_here(str(request["app"]), feedback)}
        if op == "observe":  # what another frontend's policies learned (we own the state)
            return self.policies.observe(list(request["observations"]))
        if op == "policy_states":  # the owner's state
            adopt_policy_states(self.dataplane, dict(request["states"]))
            return {}
        if op == "policy_states_all":
            return self.policies.states()
        if op == "policy_flush":  # the control process reads the state next
            await self.policies.flush()
            return {}
        raise InvalidInput(f"unknown peer request {op!r}")

    def stats(self) -> dict[str, Any]:
        """This frontend's pid, index, predict requests of apps and inputs queued for a
        model so far (any query surface), and the apps and model versions of the registry
        state it serves."""
        samples = self.metrics.snapshot()

        def total(prefix: str) -> float:
            return sum(value for key, value in samples.items() if key.startswith(prefix))

        versions = sorted(
            f"{model_id.name}:{model_id.version}" for model_id in self.snapshot.versions
        )
        return {
            "pid": os.getpid(), "index": self.index, "count": self.count,
            "digest": self._digest, "replicas": len(self._channels),
            "serving": self._serve_now.is_set(),
            "requests": total("clipper_app_requests_total"),
            "inputs_queued": total("clipper_model_queue_delay_seconds_count"),
            "apps": sorted(self.snapshot.apps), "versions": versions,
        }  # fmt: skip

    async def _metrics_page(self) -> bytes:
        """Every process's metrics merged by the control process; ours alone without it."""
        try:
            reply = await ask_peer(frontend_peer_path(self.state_dir, None), {"op": "metrics"})
        except PeerUnreachable:
            return self.metrics.render()
        return str(reply["text"]).encode()

    # -- life cycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stopping` is set; release everything in reverse order."""
        async with contextlib.AsyncExitStack() as stack:
            await self._start(stack)
            log.info("frontend %d of %d serving as pid %d", self.index, self.count, os.getpid())
            await self.stopping.wait()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        tls = server_ssl_context(settings)
        named = {"clipper.frontend.index": self.index, "process.pid": os.getpid()}
        self.tracing = open_tracing(settings, self.dataplane, named)  # None: nothing imported
        if self.tracing is not None:
            stack.push_async_callback(self.tracing.aclose)  # the last spans exported
        registry = self._registry = Registry.open(self.state_dir)
        stack.callback(registry.close)
        self._follower = RegistryFollower(registry, self._apply)
        self._follower.refresh()
        secret = load_or_create_secret(self.state_dir)
        make_socket_dir(self.state_dir)
        rpc = await start_unix_rpc_listener(
            frontend_rpc_path(self.state_dir, self.index), self._on_register, self._on_lost,
            TicketCheck(secret), self.poller.touch, DEFAULT_MAX_UNREGISTERED,
        )  # fmt: skip
        if rpc is None:
            raise ClipperError(f"{frontend_rpc_path(self.state_dir, self.index)} is too long "
                               "a path for a Unix socket")  # fmt: skip
        stack.callback(rpc.close)
        budget = connection_budget(
            raise_open_files_limit(), settings.max_connections, 1,
            settings.grpc_max_connections, DEFAULT_MAX_UNREGISTERED,
        )  # fmt: skip
        query_sock = self._query_sock = stack.enter_context(self._listening_socket())
        tasks = await stack.enter_async_context(asyncio.TaskGroup())
        peer = await serve_peer(frontend_peer_path(self.state_dir, self.index), self._peer)
        stack.callback(peer.close)
        background = [tasks.create_task(supervised("registry follower", self._follower.run))]
        stack.callback(lambda: [task.cancel() for task in background])
        if not await self._wait_to_serve():
            return
        background += [
            tasks.create_task(supervised("cold starts", self.signals.forward_cold_starts)),
            # payload records, written behind; a last bounded flush runs when cancelled
            tasks.create_task(supervised("payload log", self.payloads.run)),
            tasks.create_task(supervised("policy sharing", self.policies.run)),
        ]
        payloads = self.payloads
        inference = InferenceService(self.dataplane, lambda: self.snapshot, self.metrics,
                                     payloads.taps, payloads.version_taps)  # fmt: skip
        limits = input_limits(settings)
        grpc_server = await start_grpc(
            inference, settings.host, settings.grpc_port, settings.max_body_bytes, limits,
            self.query_guard, tls_files(settings),
            GrpcConnectionLimits(budget.grpc, settings.header_timeout_s), self.tracing,
            reuse_port=True,
        )  # fmt: skip
        if grpc_server is not None:
            stack.push_async_callback(grpc_server.stop, SHUTDOWN_GRACE_S)
        self._start_query_port(stack, tasks, inference, query_sock, tls, budget.query)
        if self.index == 0:  # one writer of the policy states (see the module's docstring)
            background.append(tasks.create_task(supervised(
                "policy flusher", lambda: run_policy_flusher(registry, self.dataplane)
            )))  # fmt: skip
        self.dataplane.ready = True

    async def _wait_to_serve(self) -> bool:
        """Until told to serve queries (at once but for a successor); False: stopping."""
        if self._serve_now.is_set():
            return True
        serve = asyncio.ensure_future(self._serve_now.wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([serve, stop], return_when=asyncio.FIRST_COMPLETED)
        serve.cancel()
        stop.cancel()
        return self._serve_now.is_set()

    def _listening_socket(self) -> socket.socket:
        """The query port's listening socket: the predecessor's, else a new one."""
        if self._query_fd is None:
            return bind_socket(self.settings.host, self.settings.query_port, reuse_port=True)
        sock = socket.socket(fileno=self._query_fd)
        sock.setblocking(False)
        return sock

    def _start_query_port(
        self,
        stack: contextlib.AsyncExitStack,
        tasks: asyncio.TaskGroup,
        inference: InferenceService,
        sock: socket.socket,
        tls: ssl.SSLContext | None,
        max_connections: int,
    ) -> None:
        settings = self.settings
        body_limit, guard = settings.max_body_bytes, self.query_guard
        cors = CorsPolicy(settings.cors_allowed_origins) if settings.cors_allowed_origins else None
        app = QueryPort(
            ClipperQueryApi(
                self.dataplane,
                self.metrics,
                body_limit,
                guard,
                input_limits(settings),
                self.payloads.taps,
                self.payloads.version_taps,
                metrics_page=self._metrics_page,
            ),
            V2RestApi(inference, body_limit, input_limits(settings), guard),
            cors,
            self.tracing,
        )
        stop = asyncio.Event()
        if settings.query_http == "uvicorn":
            gate = ConnectionGate(max_connections, settings.max_connections_per_client)
            server = EmbeddedServer(
                app, sock, tls, gate, settings.header_timeout_s, websockets=True
            )
            serving = tasks.create_task(server.run_on_socket())

            async def stop_uvicorn() -> None:
                server.should_exit = True
                await asyncio.wait([serving], timeout=SHUTDOWN_GRACE_S)

            stack.push_async_callback(stop_uvicorn)
            return
        limits = replace(http_limits(settings), max_connections=max_connections)
        serving = tasks.create_task(serve_http11(
            app, sock, body_limit, stop, tls, limits, self.poller.touch, DRAIN_IDLE_S
        ))  # fmt: skip

        async def stop_http() -> None:
            stop.set()
            await asyncio.wait([serving], timeout=SHUTDOWN_GRACE_S)

        stack.push_async_callback(stop_http)
