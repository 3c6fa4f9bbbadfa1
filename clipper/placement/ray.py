"""Ray placement: each replica is a Ray actor that runs and supervises the worker on its node.

Ray decides where a replica runs (its resource request per model version: CPUs, GPUs,
memory, custom resources, labels, node affinity) and reports when the actor, its node or
the worker dies; the reconciler restarts the replica as it would a local crash. The data
path stays ours: the worker dials the server's advertised RPC address, and no query ever
crosses a Ray call. The artifact travels once per version through Ray's object store, since
a worker on another machine cannot read the server's state directory.

Invariants: one actor per running replica, created with `max_restarts=0` (restarts are the
reconciler's, with its backoff); a replica's `wait()` resolves exactly once, after its
actor has been killed, whether the worker exited, the actor died or its node was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from clipper.artifacts.format import pack_directory
from clipper.core.resources import DEFAULT_NUM_CPUS, ResourceRequest
from clipper.placement.base import ReplicaLaunch, ReplicaPlacement
from clipper.placement.ray_actor import ReplicaActor
from clipper.placement.scheduling import (
    FreeCapacity,
    NodeView,
    free_capacity,
    loopback_blind_nodes,
    unschedulable_reason,
)

__all__ = ["RayPlacement", "RayReplica", "worker_args"]

log = logging.getLogger("clipper.placement.ray")

LOST_EXIT_CODE = -int(signal.SIGKILL)
"""What `wait()` returns when the actor or its node died and the worker's code is unknown."""
START_FAILED_EXIT_CODE = 1
SCHEDULE_CHECK_INTERVAL_S = 1.0
UNAVAILABLE_RETRY_S = 0.5
UNAVAILABLE_GRACE_S = 60.0
KILL_GRACE_S = 3.0
FINISH_TIMEOUT_S = 5.0
LOG_POLL_INTERVAL_S = 1.0
LOG_CHUNK_BYTES = 256 * 1024


def worker_args(launch: ReplicaLaunch) -> list[str]:
    """The worker's command line after the interpreter, less what only its node knows."""
    replica = launch.replica_id
    return [
        "-m", "clipper.worker",
        "--connect", launch.rpc_address,
        "--model", replica.model.name,
        "--version", replica.model.version,
        "--replica", str(replica.replica),
        "--input-type", launch.input_type.value,
        "--heartbeat-interval-s", str(launch.heartbeat_interval_s),
        "--spin-us", str(launch.spin_us),
        *launch.limit_args(),
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Artifact:
    """An artifact directory packed into Ray's object store, keyed by what it was."""

    identity: tuple[int, int]
    ref: ray.ObjectRef[bytes]


class RayPlacement:
    """Starts replicas as Ray actors on a Ray cluster.

    `address` is Ray's: None (the cluster RAY_ADDRESS or this machine names, else a new
    local instance), "auto", "host:port" of a GCS, "ray://host:port" (Ray Client), or
    "local" (always a new local instance, stopped with the server).
    """

    def __init__(
        self,
        address: str | None = None,
        namespace: str = "clipper",
        default_num_cpus: float = DEFAULT_NUM_CPUS,
        secret: str = "",
    ) -> None:
        self._address = address
        self._secret = secret  # reaches each worker's environment through its actor
        self._namespace = namespace
        self._default_num_cpus = default_num_cpus
        self._artifacts: dict[Path, _Artifact] = {}
        self._replicas: set[RayReplica] = set()
        self._actor_class: Any = None

    # -- life cycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Connect to (or start) the Ray cluster; raises ConnectionError if unreachable."""
        await asyncio.to_thread(self._connect)
        self._actor_class = ray.remote(ReplicaActor)
        nodes = await asyncio.to_thread(self.nodes)
        log.info("placing replicas on Ray: %d alive node(s) (%s)", sum(n.alive for n in nodes),
                 ", ".join(node.address for node in nodes if node.alive))  # fmt: skip

    def _connect(self) -> None:
        extra: dict[str, Any] = {"include_dashboard": False} if self._address == "local" else {}
        ray.init(
            address=self._address,
            namespace=self._namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
            **extra,
        )

    async def aclose(self) -> None:
        """Kill the replicas' actors still running and disconnect from Ray."""
        await asyncio.gather(*(replica.aclose() for replica in list(self._replicas)))
        self._artifacts.clear()
        if ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)

    def reachability_warnings(self, rpc_host: str) -> list[str]:
        """Warnings when workers on other machines could not dial `rpc_host`."""
        blind = loopback_blind_nodes(rpc_host, self.nodes())
        if not blind:
            return []
        return [
            f"workers on Ray nodes {', '.join(blind)} cannot reach the RPC listener at "
            f"{rpc_host}: set rpc_host to an address they reach (or 0.0.0.0) and "
            "rpc_advertise_host to the address they should dial"
        ]

    def node_ip(self) -> str:
        """This machine's address as the Ray cluster knows it."""
        return str(ray.util.get_node_ip_address())

    # -- replicas ---------------------------------------------------------------------

    async def start(self, launch: ReplicaLaunch) -> RayReplica:
        """Create the replica's actor; it is placed, started and watched in the background."""
        if self._actor_class is None:
            raise RuntimeError("RayPlacement.open() was not awaited")
        artifact = await self._artifact(launch.artifact)
        options = self._actor_options(launch.resources)
        name = str(launch.replica_id)
        args = worker_args(launch)
        credential = launch.credential or self._secret  # the replica's own, when issued
        actor = self._actor_class.options(**options).remote(name, args, artifact, credential)
        replica = RayReplica(actor, launch, self._explain)
        self._replicas.add(replica)
        replica.supervisor.add_done_callback(lambda _: self._forget(replica))
        return replica

    def _forget(self, replica: RayReplica) -> None:
        """Drop an ended replica, and its artifact from the object store once unused."""
        self._replicas.discard(replica)
        path = replica.launch.artifact
        if all(other.launch.artifact != path for other in self._replicas):
            self._artifacts.pop(path, None)

    def _actor_options(self, request: ResourceRequest) -> dict[str, Any]:
        options = request.actor_options(self._default_num_cpus)
        options.update(max_restarts=0, max_task_retries=0)
        if request.node_id is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                request.node_id, soft=request.node_affinity_soft
            )
        return options

    async def _artifact(self, path: Path) -> ray.ObjectRef[bytes]:
        """The artifact's tar in the object store, packed once while replicas use it."""
        stat = await asyncio.to_thread(path.stat)
        identity = (stat.st_ino, stat.st_mtime_ns)
        cached = self._artifacts.get(path)
        if cached is None or cached.identity != identity:
            archive = await asyncio.to_thread(pack_directory, path)
            ref = await asyncio.to_thread(ray.put, archive)
            cached = self._artifacts[path] = _Artifact(identity, ref)
        return cached.ref

    # -- why a replica waits ----------------------------------------------------------

    def nodes(self) -> list[NodeView]:
        """The cluster's nodes with their total and (where known) free resources."""
        try:
            free = ray._private.state.available_resources_per_node()
        except Exception:  # a developer API: without it, no "waiting for resources"
            free = {}
        return [
            NodeView(
                node_id=node["NodeID"],
                address=node["NodeManagerAddress"],
                alive=bool(node["Alive"]),
                total=node.get("Resources", {}),
                available=free.get(node["NodeID"]),
                labels=node.get("Labels", {}),
            )
            for node in ray.nodes()
        ]

    def free_capacity(self, request: ResourceRequest) -> FreeCapacity | None:
        """How many more replicas of `request` the cluster's free resources hold now
        (blocking: it asks Ray's GCS; None where Ray does not say what is free)."""
        return free_capacity(request, self.nodes(), self._default_num_cpus)

    async def _explain(self, actor: Any, request: ResourceRequest) -> str | None:
        """Why a not yet started actor is not placed, or None while it may just be starting."""
        return await asyncio.to_thread(self._explain_sync, actor, request)

    def _explain_sync(self, actor: Any, request: ResourceRequest) -> str | None:
        if not _waits_for_a_node(actor):
            return None
        return unschedulable_reason(request, self.nodes(), self._default_num_cpus)


def _waits_for_a_node(actor: Any) -> bool:
    """Whether Ray's actor table shows the actor not placed yet (True if that developer API
    fails). An actor pending creation whose worker was leased (it has a pid and address)
    holds its node's resources and is only starting: it waits for nothing."""
    try:
        info = ray._private.state.actors(actor._actor_id.hex())
    except Exception:
        return True
    if not info:
        return True
    leased = bool(info.get("Pid")) or bool((info.get("Address") or {}).get("IPAddress"))
    return info.get("State") == "PENDING_CREATION" and not leased


Explain = Callable[[Any, ResourceRequest], Any]


class _ReplicaLost(Exception):
    """The actor, or the node it ran on, is gone; the worker's exit code is unknown."""


class RayReplica:
    """A replica's actor, seen through the RunningReplica protocol."""

    def __init__(self, actor: Any, launch: ReplicaLaunch, explain: Explain) -> None:
        self._actor = actor
        self.launch = launch
        self._explain = explain
        self._info: dict[str, Any] | None = None
        self._unschedulable: str | None = None
        self._log_offset = 0
        self._force_kill: asyncio.TimerHandle | None = None
        self._stopping = False
        self._result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Owned here (and cancelled by `aclose`); it ends by itself once the actor is gone.
        self.supervisor = asyncio.get_running_loop().create_task(self._supervise())

    # -- RunningReplica ---------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The worker's pid on its node, once started."""
        return int(self._info["pid"]) if self._info else None

    def placement_details(self) -> ReplicaPlacement:
        """The node the worker runs on, or why the actor is not placed yet."""
        info = self._info or {}
        return ReplicaPlacement(
            node=info.get("node_ip") or info.get("hostname"),
            node_id=info.get("node_id"),
            unschedulable=self._unschedulable,
        )

    async def wait(self) -> int:
        """Wait until the worker exited or the actor died; the exit code."""
        return await asyncio.shield(self._result)

    def terminate(self) -> None:
        """SIGTERM the worker; an actor not started yet is killed at once."""
        self._stopping = True
        if self._info is None:
            self._kill_actor()
        elif not self._result.done():
            self._actor.send_signal.remote(int(signal.SIGTERM))

    def kill(self) -> None:
        """SIGKILL the worker, and the actor if it does not answer in time."""
        if self._info is None:
            self._stopping = True
            self._kill_actor()
        elif not self._result.done():
            self._actor.send_signal.remote(int(signal.SIGKILL))
            if self._force_kill is None:
                loop = asyncio.get_running_loop()
                self._force_kill = loop.call_later(KILL_GRACE_S, self._kill_actor)

    # -- supervision ------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop supervising (the server is closing): kill the actor, resolve `wait()`."""
        self.supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.supervisor

    async def _supervise(self) -> None:
        """Run the replica to its end; `_result` is set whatever happens, even on cancel."""
        code = LOST_EXIT_CODE
        try:
            code = await self._run()
        except _ReplicaLost as exc:
            self._append_log(f"clipper: replica {self.launch.replica_id} lost: {exc}\n")
        except RayError as exc:
            if not self._stopping:
                what = "could not start" if self._info is None else "failed"
                self._append_log(f"clipper: replica {self.launch.replica_id} {what}: {exc}\n")
            if self._info is None:
                code = START_FAILED_EXIT_CODE
        except Exception as exc:  # never leave wait() hanging
            log.exception("supervising replica %s failed", self.launch.replica_id)
            self._append_log(f"clipper: supervising the replica failed: {exc!r}\n")
        finally:
            if self._force_kill is not None:
                self._force_kill.cancel()
            self._kill_actor()
            self._unschedulable = None
            if not self._result.done():
                self._result.set_result(code)

    async def _run(self) -> int:
        self._info = await self._placed(self._actor.start.remote())
        log.info("replica %s runs on node %s (pid %s)", self.launch.replica_id,
                 self.placement_details().node, self.pid)  # fmt: skip
        forwarding = asyncio.get_running_loop().create_task(self._forward_logs())
        try:
            code = await self._exited()
        finally:
            forwarding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarding
        await self._finish()
        return code

    async def _placed(self, start: Any) -> dict[str, Any]:
        """Await the actor's start, explaining meanwhile why it is not placed."""
        started = asyncio.wrap_future(start.future())
        while True:
            done, _ = await asyncio.wait({started}, timeout=SCHEDULE_CHECK_INTERVAL_S)
            if done:
                self._unschedulable = None
                info: dict[str, Any] = started.result()
                return info
            self._unschedulable = await self._explain(self._actor, self.launch.resources)

    async def _exited(self) -> int:
        """The worker's exit code; retries while Ray calls the actor unavailable."""
        unavailable_since: float | None = None
        while True:
            try:
                return int(await self._actor.wait.remote())
            except ActorUnavailableError as exc:
                now = time.monotonic()
                unavailable_since = unavailable_since or now
                if now - unavailable_since > UNAVAILABLE_GRACE_S:
                    raise _ReplicaLost(f"unreachable for {UNAVAILABLE_GRACE_S:g} s: {exc}") from exc
                await asyncio.sleep(UNAVAILABLE_RETRY_S)
            except RayActorError as exc:
                raise _ReplicaLost(_message(exc)) from exc

    async def _finish(self) -> None:
        """Copy the last of the log and let the actor clean up its node, best effort."""
        with contextlib.suppress(RayError, TimeoutError):
            await asyncio.wait_for(self._pull_logs(), FINISH_TIMEOUT_S)
        with contextlib.suppress(RayError, TimeoutError):
            await asyncio.wait_for(self._actor.finish.remote(), FINISH_TIMEOUT_S)

    # -- logs -------------------------------------------------------------------------

    async def _forward_logs(self) -> None:
        """Append the worker's output on its node to the replica's log on this machine."""
        while True:
            with contextlib.suppress(RayError):
                await self._pull_logs()
            await asyncio.sleep(LOG_POLL_INTERVAL_S)

    async def _pull_logs(self) -> None:
        while True:
            chunk, self._log_offset = await self._actor.read_log.remote(
                self._log_offset, LOG_CHUNK_BYTES
            )
            if chunk:
                self._append_log(chunk)
            if len(chunk) < LOG_CHUNK_BYTES:
                return

    def _append_log(self, data: bytes | str) -> None:
        path = self.launch.log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as file:
            file.write(data.encode() if isinstance(data, str) else data)

    def _kill_actor(self) -> None:
        with contextlib.suppress(Exception):
            ray.kill(self._actor, no_restart=True)


def _message(exc: BaseException, limit: int = 2000) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + " ..."
