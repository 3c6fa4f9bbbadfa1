"""The server process: query API, admin API, worker RPC listener and reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from clipper.admin.api import build_admin_app
from clipper.admin.dashboard.history import SummaryHistory, history_capacity, sample_summaries
from clipper.admin.dashboard.summary import exposition_summary, metrics_summary
from clipper.admin.query_tokens import reload_guard
from clipper.control.autoscaling_loop import AutoscalerLoop
from clipper.control.log_rotation import rotate_logs
from clipper.control.policies import run_policy_flusher
from clipper.control.reconciler import Reconciler
from clipper.control.rollouts import RolloutLoop, resume_rollouts, rollout_samples
from clipper.control.service import ClusterService
from clipper.control.store import Registry
from clipper.core.config import Settings
from clipper.core.exceptions import ClipperError
from clipper.core.input_limits import HttpLimits, InputLimits, http_limits, input_limits
from clipper.core.open_files import ConnectionBudget, connection_budget, raise_open_files_limit
from clipper.core.process_memory import freeze_startup_objects, keep_freed_memory, resume_collector
from clipper.core.supervision import supervised
from clipper.core.types import ModelId, ReplicaId
from clipper.dataplane.dataplane import DataPlane
from clipper.environments.manager import EnvironmentManager
from clipper.frontend.clipper_api.query_api import ClipperQueryApi
from clipper.frontend.oip.grpc_server import GrpcConnectionLimits, start_grpc
from clipper.frontend.oip.rest import V2RestApi
from clipper.frontend.oip.service import InferenceService
from clipper.frontend.openai_api.api import OpenAIApi
from clipper.frontend.query_port import QueryPort
from clipper.frontends.control_signals import ControlSignals
from clipper.frontends.policy_sharing import adopt_policy_states, pull_policy_states
from clipper.frontends.supervisor import FrontendSupervisor
from clipper.http.connection_gate import ConnectionGate
from clipper.http.cors import CorsPolicy
from clipper.http.http11 import serve_http11
from clipper.http.loop_polling import LoopPoller
from clipper.http.uvicorn_host import EmbeddedServer, bind_socket
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads import PayloadLog, SinkSettings
from clipper.placement.gpu_discovery import GpuProbe, discover_gpus
from clipper.placement.local import LocalPlacement, adoptable_workers, reap_leftovers
from clipper.rpc.credentials import ReplicaCredentials
from clipper.rpc.fanout import (
    TICKET_SEPARATOR,
    TicketCheck,
    frontend_rpc_address,
    frontend_ticket,
)
from clipper.rpc.protocol import Register
from clipper.rpc.secret import load_or_create_secret
from clipper.rpc.server import (
    DEFAULT_MAX_UNREGISTERED,
    WorkerChannel,
    start_rpc_listener,
    start_unix_rpc_listener,
)
from clipper.security import (
    AdminTokenFile,
    QueryTokenGuard,
    check_bind,
    ensure_admin_token,
    prepare_admin_token,
    private_state_dir,
    server_ssl_context,
    tls_files,
)
from clipper.tracing import open_tracing
from clipper.worker.rlimits import sweep_cgroups

if TYPE_CHECKING:
    from clipper.placement.ray import RayPlacement
    from clipper.tracing.session import QueryTracing

__all__ = ["ClipperServer", "serve"]

log = logging.getLogger("clipper.server")
PID_FILE = "server.pid"
RPC_SOCKET_NAME = "rpc.sock"  # where workers on this machine dial (clipper.rpc.server)
DRAIN_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 10.0
LOG_ROTATION_INTERVAL_S = 5.0
STARTUP_FREEZE_DELAY_S = 1.0
"""From the servers' start to freezing the start-up objects: the full collection the freeze
makes (about 50 ms) comes after the first answers, not before them."""


class ClipperServer:
    """Everything one cluster's server process runs, wired together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = settings.resolved_state_dir()
        self.metrics = ServerMetrics()
        self.dataplane = DataPlane(self.metrics, settings.cache_bytes)
        self.payloads = PayloadLog(
            SinkSettings(
                self.state_dir / "payloads", settings.payload_log_max_bytes,
                settings.payload_log_backups, settings.payload_log_timeout_s,
                f"http://{settings.host}:{settings.query_port}", settings.cluster_name,
            ),
            settings.payload_log_buffer, self.metrics,
        )  # fmt: skip
        self.poller = LoopPoller(settings.server_spin_us / 1e6)  # queries' and replies' reads
        self.environments = EnvironmentManager(
            settings.resolved_env_cache_dir(),
            worker_python=settings.worker_python,
            installer=settings.env_installer,
            build_timeout_s=settings.env_build_timeout_s,
        )
        # Workers must present it to register (clipper.rpc.secret); never logged.
        self.worker_secret = load_or_create_secret(self.state_dir)
        self.ray_placement = _ray_placement(settings, self.worker_secret)
        # The GPUs local replicas share (fake ones from `gpus`, else NVML's, else none).
        gpus = discover_gpus(settings.gpus) if self.ray_placement is None else GpuProbe(())
        local = LocalPlacement(
            settings.worker_python, self.environments, self.worker_secret, self.state_dir, gpus,
            settings.worker_threads,
        )  # fmt: skip
        self.metrics.watch_gpus(local.gpus.samples)
        self.local_placement = local
        # Workers of an earlier server adopted (several frontends): each may register once
        # with its frontend ticket instead of a one-time credential (see _check_registration).
        self._rejoining: set[tuple[str, str, int]] = set()
        self._tickets = TicketCheck(self.worker_secret)
        local.on_adopt = self._on_adopt
        # Who may register: a one-time credential per replica started, the cluster's secret
        # only for workers of containerless versions (clipper.rpc.credentials).
        self.credentials = ReplicaCredentials(self.worker_secret, self._is_external)
        self.reconciler = Reconciler(
            self.ray_placement or local,
            settings.restart_backoff_initial_s,
            settings.restart_backoff_max_s,
            drain=self._drain_replica,
            credentials=self._issue_credential,
        )
        self.stopping = asyncio.Event()
        self.started_at = time.time()
        self._channels: set[WorkerChannel] = set()
        self.grpc_server: grpc.aio.Server | None = None
        self.tracing: QueryTracing | None = None  # set at start when otel_endpoint is
        self.query_guard = QueryTokenGuard()
        # Several query frontends (clipper.frontends): this process is then the control
        # process, and serves no queries itself.
        self.frontend_count = settings.resolved_frontends()
        self.frontends: FrontendSupervisor | None = None
        self.signals = (  # the autoscaler's, cold starts', rollouts', drains' (N > 1)
            ControlSignals(self.state_dir, self.frontend_count, self.dataplane.cold_starts)
            if self.frontend_count > 1 else None
        )  # fmt: skip
        interval_s = settings.dashboard_sample_interval_s
        self.summary_history = SummaryHistory(
            history_capacity(settings.dashboard_history_s, interval_s), interval_s
        )

    # -- worker connections ---------------------------------------------------------

    def _issue_credential(self, replica: ReplicaId) -> str:
        model, version = replica.model.name, replica.model.version
        credential = self.credentials.issue(model, version, replica.replica)
        if self.frontend_count == 1:
            return credential
        ticket = frontend_ticket(self.worker_secret, model, version, replica.replica)
        return f"{credential}{TICKET_SEPARATOR}{ticket}"  # the frontends' (clipper.rpc.fanout)

    def _on_adopt(self, replica: ReplicaId) -> None:
        self._rejoining.add((replica.model.name, replica.model.version, replica.replica))

    def _check_registration(self, message: Register) -> str | None:
        """An adopted worker registering again (once, with its frontend ticket), else the
        one-time credentials' check."""
        key = (message.model, message.version, message.replica)
        if key in self._rejoining and self._tickets(message) is None:
            self._rejoining.discard(key)
            return None
        return self.credentials.check(message)

    def _is_external(self, model: str, version: str) -> bool:
        """Whether a version's workers are started by someone else (containerless)."""
        service: ClusterService | None = getattr(self, "service", None)
        record = None if service is None else service.snapshot.versions.get(ModelId(model, version))
        return record is not None and record.containerless

    def _on_register(self, channel: WorkerChannel, message: Register) -> str | None:
        reason = self.dataplane.attach(channel, message)
        if (
            reason is None
            and self.frontends is not None
            and self._is_external(message.model, message.version)
        ):
            log.info("containerless worker %s:%s:%d registered: with %d query frontends it "
                        "serves queries only by dialling each (`--frontend ADDRESS`, one per "
                        "frontend `clipper status` lists; docs/frontends.md)", message.model,
                        message.version, message.replica, self.frontend_count)  # fmt: skip
        if reason is None:
            self._channels.add(channel)
            model_id = ModelId(message.model, message.version)
            self.reconciler.mark_ready(ReplicaId(model_id, message.replica))
        return reason

    def _on_lost(self, channel: WorkerChannel) -> None:
        self._channels.discard(channel)
        registration = channel.registration
        external = registration is not None and self._is_external(
            registration.model, registration.version
        )
        # A worker the server started ends when its connection does (EOF): the reconciler
        # logs that once, as "stopped" or "exited with code N".
        self.dataplane.detach(channel, logged_elsewhere=not external)

    async def _watch_heartbeats(self) -> None:
        """Kill workers that stay silent past the heartbeat timeout (hung)."""
        timeout_s = self.settings.heartbeat_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout_s / 4))
            now = time.monotonic()
            for channel in list(self._channels):
                registration = channel.registration
                if registration is not None and now - channel.last_seen > timeout_s:
                    log.error("replica %s missed heartbeats for %.1f s; replacing it",
                              channel.name, now - channel.last_seen)  # fmt: skip
                    replica = ReplicaId(
                        ModelId(registration.model, registration.version), registration.replica
                    )
                    self.reconciler.kill(replica)
                    channel.close()

    async def _drain_replica(self, replica_id: ReplicaId) -> None:
        if self.signals is not None:  # the frontends' batches on it back first
            await self.signals.drain(replica_id, DRAIN_TIMEOUT_S)
        await self.dataplane.drain_replica(replica_id.model, replica_id.replica, DRAIN_TIMEOUT_S)

    async def _rotate_logs(self) -> None:
        """Keep log files bounded in size."""
        logs_dir = self.state_dir / "logs"
        while True:
            await asyncio.sleep(LOG_ROTATION_INTERVAL_S)
            await asyncio.to_thread(  # file copies stay off the event loop
                rotate_logs, logs_dir, self.settings.log_max_bytes, self.settings.log_backups
            )

    async def _sample_summaries(self) -> None:
        """The dashboard's history of metrics summaries (in memory, no file I/O)."""
        await sample_summaries(self.summary_history, self._summary)

    def _summary(self) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """The dashboard's summary: this process's metrics, or every frontend's merged."""
        if self.frontends is None:
            return metrics_summary(self.metrics)
        return self._frontends_summary()

    async def _frontends_summary(self) -> dict[str, Any]:
        assert self.frontends is not None
        return exposition_summary(await self.frontends.metrics_page())

    # -- status ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What `clipper status` shows."""
        settings = self.settings
        snapshot = self.service.snapshot
        return {
            "cluster_name": settings.cluster_name,
            "pid": os.getpid(),
            "query_addr": f"{settings.host}:{settings.query_port}",
            "admin_addr": f"{settings.host}:{settings.admin_port}",
            "rpc_addr": self.service.rpc_address,
            "placement": settings.placement,
            "grpc_addr": f"{settings.host}:{settings.grpc_port}" if self.grpc_server else None,
            "state_dir": str(self.state_dir),
            "uptime_s": round(time.time() - self.started_at, 3),
            "apps": len(snapshot.apps),
            "models": len(snapshot.versions),
            "replicas": len(self.service.all_replicas()),
            "cold": self.service.cold_versions(),
            "tracing": self.tracing is not None,
            "opentelemetry_loaded": "opentelemetry" in sys.modules,
            **({} if self.frontends is None else {"frontends": self.frontends.status()}),
        }

    # -- life cycle -----------------------------------------------------------------

    async def run(self, demo: bool = False) -> None:
        """Serve until `stopping` is set (signal or admin shutdown), then clean up.

        Every resource registers its release on one exit stack the moment it is acquired,
        so a failure at any step of the start, or while serving, still releases everything
        acquired before it, in the reverse order: HTTP and gRPC stop taking requests and
        finish theirs, the background tasks end (the policy state's last flush), the
        replicas stop, and only then do the RPC listeners, the registry and the sockets close.
        """
        async with contextlib.AsyncExitStack() as stack:
            await self._start(stack, demo)
            log.info("serving: query %s:%d, admin %s:%d, rpc %s",
                     self.settings.host, self.settings.query_port, self.settings.host,
                     self.settings.admin_port, self.service.rpc_address)  # fmt: skip
            await self.stopping.wait()
            log.info("stopping: finishing in-flight requests")

    async def _start(self, stack: contextlib.AsyncExitStack, demo: bool) -> None:
        """Acquire every part of the server, each release pushed on `stack` at once."""
        settings = self.settings
        tls, token_file = self._prepare_security()
        self.connections = self._connection_budget()
        multi = self.frontend_count > 1
        if self.ray_placement is None:  # an earlier server's, after a kill -9: adopted
            adoptable = adoptable_workers(self.state_dir) if multi else {}  # (frontends)
            self.local_placement.offer_adoption(adoptable)
            reap_leftovers(self.state_dir, keep_sessions=adoptable.values())  # or killed
        sweep_cgroups()  # of workers gone with their server, after a kill -9
        if multi and self.ray_placement is not None:
            raise ClipperError("several query frontends (frontends > 1) need placement=local")
        query_sock = (
            None if multi else stack.enter_context(bind_socket(settings.host, settings.query_port))
        )
        admin_sock = stack.enter_context(bind_socket(settings.host, settings.admin_port))
        self.tracing = open_tracing(settings, self.dataplane)  # None: nothing imported
        if self.tracing is not None:
            stack.push_async_callback(self.tracing.aclose)  # the last spans exported
        rpc_port = await self._start_rpc(stack)
        registry = self._open_registry(stack)
        stack.push_async_callback(self.environments.aclose)
        rpc_address = await self._open_placement(stack, rpc_port)
        rpc_address = await self._start_local_rpc(stack, rpc_address)
        stack.push_async_callback(self.reconciler.close)  # after the tasks below have ended
        self.service = ClusterService(
            settings, registry, self.dataplane, self.reconciler,
            rpc_address, environments=self.environments,
        )  # fmt: skip
        self.service.snapshot_listeners.append(self.payloads.apply)
        if multi:  # every replica serves every frontend (clipper.rpc.fanout)
            self.service.frontend_addresses = tuple(
                frontend_rpc_address(self.state_dir, index) for index in range(self.frontend_count)
            )
        service = self.service
        self.metrics.watch_rollouts(lambda: rollout_samples(service))
        payloads = self.payloads
        inference = InferenceService(
            self.dataplane, lambda: self.service.snapshot, self.metrics, payloads.taps,
            payloads.version_taps,
        )  # fmt: skip
        tasks = await stack.enter_async_context(asyncio.TaskGroup())
        self.service.roll_back_unfinished_deploys()  # a deploy the server died during
        await self.service.refresh()
        self.local_placement.release_unadopted(self.reconciler.desired_ids())
        await resume_rollouts(self.service)  # a rollout the server stopped during
        reload_guard(self.query_guard, self.service)
        self._start_background(stack, tasks, registry)
        limits = input_limits(settings)
        if query_sock is None:
            await self._start_frontends(stack)
        else:
            await self._start_grpc(stack, inference, limits, tls)
        self._start_http(stack, tasks, inference, limits, query_sock, admin_sock, tls, token_file)
        self.dataplane.ready = True
        if demo:
            tasks.create_task(self._deploy_demo())

    async def _start_frontends(self, stack: contextlib.AsyncExitStack) -> None:
        """The query frontends (clipper.frontends), stopped before the replicas are."""
        self.frontends = FrontendSupervisor(self.settings, self.frontend_count, self.metrics.render)
        dataplane = self.dataplane  # its app info shows frontend 0's policy states
        self.frontends.on_policy_states = lambda states: adopt_policy_states(dataplane, states)
        self.service.policy_catch_up = partial(
            pull_policy_states, self.state_dir, self.frontend_count, dataplane
        )
        stack.push_async_callback(self.frontends.aclose)
        if self.signals is not None:
            self.frontends.handlers["wake"] = self.signals.wake
        await self.frontends.start()
        self.service.refresh_listeners.append(self.frontends.sync)

    def _connection_budget(self) -> ConnectionBudget:
        """Each port's connection cap under the open-files limit (raised first; logged)."""
        settings = self.settings
        budget = connection_budget(
            raise_open_files_limit(), settings.max_connections, settings.admin_max_connections,
            settings.grpc_max_connections, DEFAULT_MAX_UNREGISTERED,
        )  # fmt: skip
        log.info("%s", budget.describe())
        return budget

    def _gate(self, max_connections: int) -> ConnectionGate:
        return ConnectionGate(max_connections, self.settings.max_connections_per_client)

    async def _start_rpc(self, stack: contextlib.AsyncExitStack) -> int:
        """The TCP listener workers dial; its port."""
        rpc = await start_rpc_listener(
            self.settings.rpc_host, self.settings.rpc_port, self._on_register, self._on_lost,
            self._check_registration, self.poller.touch, self.connections.rpc_unregistered,
        )  # fmt: skip
        stack.callback(rpc.close)
        return int(rpc.sockets[0].getsockname()[1])

    def _open_registry(self, stack: contextlib.AsyncExitStack) -> Registry:
        registry = Registry.open(self.state_dir)
        stack.callback(registry.close)
        self.environments.events = registry.record_event
        return registry

    async def _start_local_rpc(self, stack: contextlib.AsyncExitStack, rpc_address: str) -> str:
        """With every worker on this machine, a Unix socket they dial instead of TCP."""
        if self.ray_placement is not None:
            return rpc_address
        socket_path = self.state_dir / RPC_SOCKET_NAME
        local_rpc = await start_unix_rpc_listener(
            socket_path, self._on_register, self._on_lost, self._check_registration,
            self.poller.touch, self.connections.rpc_unregistered,
        )  # fmt: skip
        if local_rpc is None:
            return rpc_address
        stack.callback(socket_path.unlink, missing_ok=True)
        stack.callback(local_rpc.close)
        return f"unix://{socket_path}"

    def _start_background(
        self, stack: contextlib.AsyncExitStack, tasks: asyncio.TaskGroup, registry: Registry
    ) -> None:
        signals = self.signals
        autoscaler = AutoscalerLoop(
            self.service, self.metrics, self.settings.autoscaler_interval_s,
            cluster=self.ray_placement, loads=None if signals is None else signals.loads,
        )  # fmt: skip
        rollouts = RolloutLoop(self.service, self.settings.rollout_interval_s,
                               None if signals is None else signals.collect_windows)  # fmt: skip
        # Each restarted after a failure (logged): none takes the server down.
        background = [
            tasks.create_task(supervised("autoscaler", autoscaler.run)),
            tasks.create_task(supervised("rollouts", rollouts.run)),
            tasks.create_task(supervised("reconciler", self.reconciler.run)),
            tasks.create_task(supervised("heartbeat watch", self._watch_heartbeats)),
            tasks.create_task(supervised("log rotation", self._rotate_logs)),
            # policy state is written behind; a last flush runs when cancelled
            tasks.create_task(
                supervised("policy flusher", lambda: run_policy_flusher(registry, self.dataplane))
            ),
            tasks.create_task(supervised("dashboard history", self._sample_summaries)),
            # payload records, written behind; a last bounded flush runs when cancelled
            tasks.create_task(supervised("payload log", self.payloads.run)),
            tasks.create_task(self._end_startup()),
        ]
        stack.callback(lambda: [task.cancel() for task in background])

    async def _start_grpc(
        self,
        stack: contextlib.AsyncExitStack,
        inference: InferenceService,
        limits: InputLimits,
        tls: ssl.SSLContext | None,
    ) -> None:
        settings = self.settings
        self.grpc_server = await start_grpc(
            inference, settings.host, settings.grpc_port, settings.max_body_bytes,
            limits, self.query_guard, tls_files(settings),
            GrpcConnectionLimits(self.connections.grpc, settings.header_timeout_s),
            self.tracing,
        )  # fmt: skip
        if self.grpc_server is not None:
            stack.push_async_callback(self.grpc_server.stop, SHUTDOWN_GRACE_S)

    def _start_http(
        self,
        stack: contextlib.AsyncExitStack,
        tasks: asyncio.TaskGroup,
        inference: InferenceService,
        limits: InputLimits,
        query_sock: socket.socket | None,
        admin_sock: socket.socket,
        tls: ssl.SSLContext | None,
        token_file: AdminTokenFile | None,
    ) -> None:
        """The query and admin ports; on the way out they stop taking requests and let the
        in-flight ones finish (bounded by SHUTDOWN_GRACE_S) before anything below them stops."""
        settings = self.settings
        body_limit, guard = settings.max_body_bytes, self.query_guard
        cors = CorsPolicy(settings.cors_allowed_origins) if settings.cors_allowed_origins else None
        query_api = QueryPort(
            ClipperQueryApi(
                self.dataplane,
                self.metrics,
                body_limit,
                guard,
                limits,
                self.payloads.taps,
                self.payloads.version_taps,
            ),
            V2RestApi(inference, body_limit, limits, guard),
            cors,
            self.tracing,
            OpenAIApi(
                self.dataplane, lambda: self.service.snapshot, self.metrics, body_limit, guard,
                limits,
            ),
        )  # fmt: skip
        admin_app = build_admin_app(
            self.service, self.metrics, self.status, self.stopping.set, settings.max_body_bytes,
            token_file=token_file, query_guard=self.query_guard, history=self.summary_history,
            summary_source=None if self.frontends is None else self._frontends_summary,
            restart_frontends=None if self.frontends is None else self.frontends.restart_all,
        )  # fmt: skip
        admin_gate = self._gate(self.connections.admin)
        admin_server = EmbeddedServer(
            admin_app, admin_sock, tls, admin_gate, settings.header_timeout_s
        )
        query_stop = asyncio.Event()
        http_tasks = [tasks.create_task(admin_server.run_on_socket())]
        if query_sock is not None:  # else the frontends serve queries (clipper.frontends)
            http_tasks.append(
                tasks.create_task(self._serve_queries(query_api, query_sock, query_stop, tls))
            )

        async def stop_http() -> None:
            query_stop.set()
            admin_server.should_exit = True
            await asyncio.wait(http_tasks, timeout=SHUTDOWN_GRACE_S)

        stack.push_async_callback(stop_http)

    async def _end_startup(self) -> None:
        """Freeze the start-up objects, then let the collector run again (`clipper start`
        pauses it while the server starts, see clipper.core.process_memory)."""
        try:
            await asyncio.sleep(STARTUP_FREEZE_DELAY_S)
            freeze_startup_objects()
        finally:
            resume_collector()

    async def _open_placement(self, stack: contextlib.AsyncExitStack, rpc_port: int) -> str:
        """Connect the Ray placement, if configured; the RPC address workers dial."""
        host = self.settings.rpc_advertise_host or self.settings.rpc_host
        if self.ray_placement is None:
            return f"tcp://{host}:{rpc_port}"
        try:
            await self.ray_placement.open()
        except Exception as exc:
            address = self.settings.ray_address or "(Ray's default)"
            raise ClipperError(f"could not connect to the Ray cluster {address}: {exc}") from exc
        stack.push_async_callback(self.ray_placement.aclose)
        if self.settings.rpc_advertise_host is None and host in ("0.0.0.0", "::", ""):
            host = self.ray_placement.node_ip()
        for warning in self.ray_placement.reachability_warnings(host):
            log.warning("%s", warning)
        return f"tcp://{host}:{rpc_port}"

    def _prepare_security(self) -> tuple[ssl.SSLContext | None, AdminTokenFile | None]:
        """Check the bind address, load TLS, make sure the admin token exists: before any
        port is bound, so a bad setting fails the start with a clear error."""
        check_bind(self.settings)
        tls = server_ssl_context(self.settings)
        if not self.settings.admin_auth:
            log.warning("admin API authentication is off (admin_auth=false)")
            return tls, None
        ensure_admin_token(self.state_dir)
        return tls, AdminTokenFile(self.state_dir)

    async def _serve_queries(
        self, app: QueryPort, sock: Any, stop: asyncio.Event, tls: ssl.SSLContext | None
    ) -> None:
        """The query API on the configured HTTP server."""
        if self.settings.query_http == "uvicorn":
            gate = self._gate(self.connections.query)
            server = EmbeddedServer(app, sock, tls, gate, self.settings.header_timeout_s,
                                    websockets=True)  # fmt: skip
            serving = asyncio.ensure_future(server.run_on_socket())
            await stop.wait()
            server.should_exit = True
            await serving
        else:
            await serve_http11(app, sock, self.settings.max_body_bytes, stop, tls,
                               self._http_limits(), self.poller.touch)  # fmt: skip

    def _http_limits(self) -> HttpLimits:
        """The query port's HTTP limits, its connection cap within the budget."""
        return replace(http_limits(self.settings), max_connections=self.connections.query)

    async def _deploy_demo(self) -> None:
        from clipper.demo import curl_command, deploy_demo

        try:
            await deploy_demo(self.service)
        except ClipperError as exc:
            log.error("the demo could not be deployed: %s", exc)
            return
        curl = curl_command(self.settings.host, self.settings.query_port)
        print(f"\nClipper is serving the demo. Try:\n\n  {curl}\n", flush=True)


def _configure_logging(settings: Settings, state_dir: Path) -> None:
    logs_dir = state_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / "server.log"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    with contextlib.suppress(OSError):
        if not (log_path.exists() and os.path.samefile(f"/proc/self/fd/{sys.stderr.fileno()}",
                                                       log_path)):  # fmt: skip
            handlers.append(logging.FileHandler(log_path))
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


async def _main(settings: Settings, demo: bool) -> None:
    server = ClipperServer(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stopping.set)
    await server.run(demo)


def serve(settings: Settings, demo: bool = False) -> None:
    """Run a server in the foreground until SIGTERM, SIGINT or an admin shutdown."""
    state_dir = settings.resolved_state_dir()
    private_state_dir(state_dir)
    prepare_admin_token(settings, sys.stdout)  # shown on a terminal, never in the log
    _configure_logging(settings, state_dir)
    keep_freed_memory(settings.malloc_keep_bytes)
    pid_path = state_dir / PID_FILE
    pid_path.write_text(str(os.getpid()))
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(_main(settings, demo))
        else:
            uvloop.run(_main(settings, demo))
    finally:
        with contextlib.suppress(FileNotFoundError):
            if pid_path.read_text().strip() == str(os.getpid()):
                pid_path.unlink()


def _ray_placement(settings: Settings, secret: str) -> RayPlacement | None:
    """The Ray placement when configured; Ray is an optional dependency, imported only then."""
    if settings.placement != "ray":
        return None
    try:
        from clipper.placement.ray import RayPlacement
    except ImportError as exc:
        raise ClipperError(
            f"the 'ray' placement needs Ray ({exc}); pip install 'clipper-serving[ray]'"
        ) from exc
    namespace = f"clipper-{settings.cluster_name}"
    return RayPlacement(settings.ray_address, namespace=namespace, secret=secret)
