"""Local placement: one subprocess per replica on this machine, in the model's environment.

Each worker leads its own process group (a session of its own), and processes the model
forks join it: stopping a replica signals the whole group, and whatever is left of the
group when the worker exits is killed. Every worker's environment names the state directory
it serves and its server's pid (`OWNER_ENV`, `SERVER_PID_ENV`, inherited by what the model
starts), so a server starting on a state directory kills what is left of the workers of an
earlier server of it that is gone (`reap_leftovers`), say after a `kill -9`.

With several query frontends a worker outlives its server (clipper.worker.fanout): a
server starting then adopts the workers it still wants (`adoptable_workers`,
`offer_adoption`; `start` returns a `LocalReplica` of the adopted process instead of
spawning one, and the worker registers again by itself) and kills the others
(`release_unadopted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from clipper.artifacts.format import artifact_environment
from clipper.core.exceptions import ClipperError
from clipper.core.processes import AdoptedProcess, process_alive
from clipper.core.types import ModelId, ReplicaId
from clipper.environments.manager import EnvironmentManager
from clipper.environments.spec import Environment
from clipper.placement.base import ReplicaLaunch, RunningReplica
from clipper.placement.deferred import DeferredReplica
from clipper.placement.gpu_discovery import GpuProbe
from clipper.placement.gpu_replica import GpuPool, GpuReplica
from clipper.placement.threads import replica_threads, thread_environment
from clipper.rpc.secret import SECRET_ENV
from clipper.worker.credential_handover import CREDENTIAL_FD_FLAG, credential_pipe
from clipper.worker.rlimits import reap_cgroup

__all__ = [
    "LocalPlacement", "LocalReplica", "PendingReplica", "adoptable_workers",
    "reap_leftovers",
]  # fmt: skip

log = logging.getLogger("clipper.placement")

BUILD_FAILED_EXIT_CODE = 3
OWNER_ENV = "CLIPPER_WORKER_OF"
SERVER_PID_ENV = "CLIPPER_WORKER_SERVER_PID"


class LocalReplica:
    """A worker process on this machine: our subprocess, or one an earlier server started
    and this one adopted (see the module's docstring; its exit code is then unknown)."""

    def __init__(self, process: asyncio.subprocess.Process | AdoptedProcess) -> None:
        self._process = process

    @property
    def pid(self) -> int | None:
        """The worker's pid."""
        return self._process.pid

    async def wait(self) -> int:
        """Wait for exit, then kill what is left of its process group; return the exit
        code (negative: killed by that signal; MEMORY_LIMIT_EXIT_CODE: killed for exceeding
        its memory cgroup's limit)."""
        code = await self._process.wait()
        _signal_group(self._process.pid, signal.SIGKILL)
        return reap_cgroup(self._process.pid, code)

    def terminate(self) -> None:
        """SIGTERM to the worker's process group (what the model forked included)."""
        _signal_group(self._process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the worker's process group."""
        _signal_group(self._process.pid, signal.SIGKILL)


def _signal_group(leader: int, signum: int) -> None:
    """Signal the process group `leader` leads (a worker: a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signum)


class PendingReplica(DeferredReplica):
    """A replica whose environment is still being built: its worker starts once the build
    is done. A failed build ends it like a worker that exits with BUILD_FAILED_EXIT_CODE,
    the build's error appended to its log (so the reconciler reports it); stopping it
    before the worker started cancels only the wait, never the shared build."""

    def __init__(
        self,
        environments: EnvironmentManager,
        placement: LocalPlacement,
        launch: ReplicaLaunch,
        env: Environment,
    ) -> None:
        super().__init__()
        run = self._run(environments, placement, launch, env)
        self._task = asyncio.get_running_loop().create_task(run)

    async def _run(
        self,
        environments: EnvironmentManager,
        placement: LocalPlacement,
        launch: ReplicaLaunch,
        env: Environment,
    ) -> int:
        try:
            python = await environments.ensure(env, str(launch.replica_id.model))
        except ClipperError as exc:
            _append_log(launch, f"environment build failed: {exc}\n")
            return BUILD_FAILED_EXIT_CODE
        self._worker = await placement.spawn(launch, python)
        return await self._worker.wait()


class LocalPlacement:
    """Starts `python -m clipper.worker` subprocesses, output appended to a log file.

    The interpreter is the server's (or `python`) when it satisfies the environment the
    artifact records, else the environment's cached virtual environment, built first when
    missing (see `clipper.environments.manager`). Workers get the cluster's `secret` in
    their environment and the replica's limits as flags. A replica that asks for
    `num_gpus` gets its devices from the machine's GPUs (`gpus`; see
    `clipper.placement.gpu_replica`), waiting while none fit; one that asks for none sees
    no GPU (CUDA_VISIBLE_DEVICES empty) on a machine that has some. Its numeric libraries
    run as many threads as the CPUs it takes, or `worker_threads` (see
    `clipper.placement.threads`).
    """

    def __init__(
        self,
        python: str | None = None,
        environments: EnvironmentManager | None = None,
        secret: str = "",
        owner: Path | None = None,
        gpus: GpuProbe | None = None,
        worker_threads: int = 0,
    ) -> None:
        self._python = python or sys.executable
        self._worker_threads = worker_threads
        self.gpus = GpuPool(gpus or GpuProbe(()))
        self.environments = environments
        self._secret = secret
        self._owner = {OWNER_ENV: str(owner), SERVER_PID_ENV: str(os.getpid())} if owner else {}
        self._adoptable: dict[ReplicaId, int] = {}
        self.on_adopt: Callable[[ReplicaId], None] = lambda replica_id: None
        """Told of each replica `start` adopts (its worker may then register again)."""

    def offer_adoption(self, workers: Mapping[ReplicaId, int]) -> None:
        """Workers (replica: pid) `start` takes over instead of spawning new ones."""
        self._adoptable.update(workers)

    def release_unadopted(self, wanted: Collection[ReplicaId]) -> list[int]:
        """Kill the adoptable workers of replicas not `wanted`; their pids."""
        unwanted = [replica for replica in self._adoptable if replica not in wanted]
        pids = [self._adoptable.pop(replica) for replica in unwanted]
        for pid in pids:
            _signal_group(pid, signal.SIGKILL)
        if pids:
            log.warning("killed %d workers of an earlier server no longer wanted: %s",
                        len(pids), pids)  # fmt: skip
        return pids

    async def start(self, launch: ReplicaLaunch) -> RunningReplica:
        """Adopt the replica's running worker if there is one; else spawn the worker now if
        its interpreter (and its GPUs) are ready, else once they are."""
        adopted = self._adopt(launch)
        if adopted is not None:
            return adopted
        if not launch.resources.num_gpus:
            return await self._start_worker(self.gpus.hidden(launch))
        return GpuReplica(self.gpus, launch, self._start_worker, self.gpus.try_grant(launch))

    def _adopt(self, launch: ReplicaLaunch) -> LocalReplica | None:
        pid = self._adoptable.pop(launch.replica_id, None)
        if pid is None:
            return None
        if launch.resources.num_gpus:  # its devices are not in our pool's books: a fresh one
            _signal_group(pid, signal.SIGKILL)
            return None
        try:
            process = AdoptedProcess(pid)
        except ProcessLookupError:
            return None
        log.info("adopted replica %s (pid %d) of an earlier server", launch.replica_id, pid)
        self.on_adopt(launch.replica_id)
        return LocalReplica(process)

    async def _start_worker(self, launch: ReplicaLaunch) -> LocalReplica | PendingReplica:
        environments = self.environments
        env = _environment_of(launch) if environments is not None else None
        if env is None or environments is None:
            return await self.spawn(launch, self._python)
        python = environments.ready_interpreter(env)
        if python is None:
            return PendingReplica(environments, self, launch, env)
        return await self.spawn(launch, python)

    async def spawn(self, launch: ReplicaLaunch, python: str) -> LocalReplica:
        """Spawn the worker in its own session, so a Ctrl-C to the server's terminal
        does not reach it; it exits by itself when the server goes (PDEATHSIG, EOF)."""
        replica = launch.replica_id
        args = [
            "-m", "clipper.worker",
            "--connect", launch.rpc_address,
            "--model", replica.model.name,
            "--version", replica.model.version,
            "--replica", str(replica.replica),
            "--input-type", launch.input_type.value,
            "--artifact", str(launch.artifact),
            "--heartbeat-interval-s", str(launch.heartbeat_interval_s),
            "--spin-us", str(launch.spin_us),
            "--parent-pid", str(os.getpid()),
            "--log-file", str(launch.log_path),
            "--log-max-bytes", str(launch.log_max_bytes),
            "--log-backups", str(launch.log_backups),
            *launch.limit_args(),
        ]  # fmt: skip
        for address in launch.frontends:  # several query frontends (clipper.rpc.fanout)
            args += ["--frontend", address]
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        threads = replica_threads(launch.resources, self._worker_threads, os.cpu_count() or 1)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **thread_environment(threads, os.environ),
               **self._owner, **dict(launch.environment)}  # fmt: skip
        env.pop(SECRET_ENV, None)
        handover: tuple[int, ...] = ()
        if launch.credential:  # over a pipe: never in the environment the model can read
            handover = (credential_pipe(launch.credential),)
            args += [CREDENTIAL_FD_FLAG, str(handover[0])]
        else:
            env[SECRET_ENV] = self._secret
        try:
            # Opening a local log file for append does not block the loop in a way that matters.
            with open(launch.log_path, "ab") as log_file:  # noqa: ASYNC230
                process = await asyncio.create_subprocess_exec(
                    python,
                    *args,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    pass_fds=handover,
                )
        finally:
            for fd in handover:
                os.close(fd)
        return LocalReplica(process)


def _environment_of(launch: ReplicaLaunch) -> Environment | None:
    try:
        return artifact_environment(launch.artifact)
    except ClipperError:
        return None  # no readable metadata: the worker itself reports what is wrong


def _append_log(launch: ReplicaLaunch, text: str) -> None:
    launch.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(launch.log_path, "a", encoding="utf-8") as log_file:
        log_file.write(text)


def reap_leftovers(owner: Path, keep_sessions: Collection[int] = ()) -> list[int]:
    """SIGKILL this user's processes left by the workers of an earlier server of `owner`
    (its state directory) whose server is gone; their pids. A process of a live server's
    workers is never touched (its server pid is alive), nor another user's, nor one of the
    sessions `keep_sessions` (workers to adopt, and what their models started)."""
    keep = {str(session) for session in keep_sessions}
    killed = []
    for entry in _leftovers(owner):
        if keep and set(_stat_fields(entry)[3:4]) & keep:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
    if killed:
        log.warning("killed %d processes left by the workers of an earlier server: %s",
                    len(killed), killed)  # fmt: skip
    return killed


def adoptable_workers(owner: Path) -> dict[ReplicaId, int]:
    """The workers of an earlier server of `owner` that is gone which serve several
    frontends (they outlive their server): each replica's worker pid."""
    found: dict[ReplicaId, int] = {}
    for entry in _leftovers(owner):
        fields = _stat_fields(entry)
        if fields[3:4] != [entry.name]:  # a worker leads its session; a model's process not
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        replica = _worker_replica(argv)
        if replica is not None:
            found[replica] = int(entry.name)
    return found


def _worker_replica(argv: list[str]) -> ReplicaId | None:
    """The replica a `python -m clipper.worker ... --frontend ...` command line serves."""
    if "clipper.worker" not in argv or "--frontend" not in argv:
        return None
    try:
        model, version, replica = (
            argv[argv.index(flag) + 1] for flag in ("--model", "--version", "--replica")
        )
        return ReplicaId(ModelId(model, version), int(replica))
    except (ValueError, IndexError):
        return None


def _leftovers(owner: Path) -> list[Path]:
    """This user's processes (their /proc entries) of workers of an earlier server of
    `owner` whose server is gone."""
    marker = f"{OWNER_ENV}={owner}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in environ and not _server_alive(environ):
            found.append(entry)
    return found


def _stat_fields(entry: Path) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: state, ppid, pgrp, session, ..."""
    try:
        return (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _server_alive(environ: list[bytes]) -> bool:
    prefix = f"{SERVER_PID_ENV}=".encode()
    for item in environ:
        if item.startswith(prefix) and item[len(prefix) :].isdigit():
            return process_alive(int(item[len(prefix) :]))
    return False
