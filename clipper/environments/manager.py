"""Which interpreter runs a model: the server's own, or a cached virtual environment.

Invariants: at most one build per environment key runs in this process (callers share its
task); a cache directory counts as built only once its marker file exists; a build that
fails leaves no directory behind and is retried by the next deploy that needs it. Builds
in other processes sharing the cache directory are excluded by a lock file per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.metadata as metadata
import logging
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from clipper.core.exceptions import EnvironmentBuildFailed
from clipper.environments.builder import (
    MARKER_FILE,
    BuildPlan,
    build_environment,
    link_clipper,
    venv_python,
)
from clipper.environments.interpreter import (
    InterpreterInfo,
    probe_interpreter,
    this_interpreter,
    unmet_requirements,
)
from clipper.environments.spec import Environment, parse_requirement

__all__ = ["WORKER_PACKAGES", "EnvironmentManager", "EventSink"]

log = logging.getLogger("clipper.environments")

WORKER_PACKAGES = ("cloudpickle", "msgpack", "numpy", "orjson")
"""The third-party packages `python -m clipper.worker` imports (tested)."""
LOCK_POLL_S = 0.5

EventSink = Callable[[str, Mapping[str, object]], None]


@dataclass(slots=True)
class _Build:
    task: asyncio.Task[str]
    started: float
    last_message: str = ""


class EnvironmentManager:
    """Resolves environments to interpreters, building and caching venvs as needed."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        worker_python: str | None = None,
        installer: str = "auto",
        build_timeout_s: float = 900.0,
        events: EventSink | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.worker_python = worker_python or sys.executable
        self.installer = installer
        self.build_timeout_s = build_timeout_s
        self.events = events
        self._builds: dict[str, _Build] = {}
        self._failures: dict[str, str] = {}
        self._interpreter: InterpreterInfo | None = None

    # -- questions answered at once ----------------------------------------------------

    @cached_property
    def worker_requirements(self) -> tuple[str, ...]:
        """The worker's own requirements, with Clipper's declared version ranges."""
        return _worker_requirements()

    def key(self, environment: Environment) -> str:
        """The cache key of an environment."""
        return environment.key(self.worker_requirements)

    def unmet(self, environment: Environment) -> list[str]:
        """What the server's worker interpreter lacks for `environment` (empty: nothing)."""
        return unmet_requirements(environment, self._worker_interpreter())

    def ready_interpreter(self, environment: Environment | None) -> str | None:
        """The interpreter to run `environment` with, if no build is needed, else None."""
        if environment is None or not self.unmet(environment):
            return self.worker_python
        directory = self.cache_dir / self.key(environment)
        if (directory / MARKER_FILE).is_file():
            link_clipper(directory)
            return str(venv_python(directory))
        return None

    def status(self, environment: Environment | None) -> dict[str, Any]:
        """`{"key", "state", ...}`; state is `server` (the server's interpreter runs it),
        `ready` (built and cached), `building`, `failed` or `missing` (not built yet)."""
        if environment is None or not self.unmet(environment):
            return {"key": None, "state": "server", "python": self.worker_python}
        key = self.key(environment)
        return self._status_of(key, environment)

    def _status_of(self, key: str, environment: Environment | None = None) -> dict[str, Any]:
        directory = self.cache_dir / key
        info: dict[str, Any] = {"key": key, "path": str(directory)}
        if environment is not None:
            info["requirements"] = list(environment.requirements)
            info["python"] = environment.python_minor
        build = self._builds.get(key)
        if build is not None:
            elapsed = round(time.monotonic() - build.started, 1)
            return {**info, "state": "building", "elapsed_s": elapsed,
                    "message": build.last_message}  # fmt: skip
        if (directory / MARKER_FILE).is_file():
            return {**info, "state": "ready"}
        if key in self._failures:
            return {**info, "state": "failed", "error": self._failures[key]}
        return {**info, "state": "missing"}

    def statuses(self) -> list[dict[str, Any]]:
        """Every environment in the cache, being built, or failed in this process."""
        keys = set(self._builds) | set(self._failures)
        if self.cache_dir.is_dir():
            keys |= {p.name for p in self.cache_dir.iterdir() if (p / MARKER_FILE).is_file()}
        return [self._status_of(key) for key in sorted(keys)]

    # -- building ----------------------------------------------------------------------

    async def ensure(self, environment: Environment | None, model: str = "") -> str:
        """The interpreter for `environment`, building its venv first if needed (one build
        per key, shared by every caller). EnvironmentBuildFailed when the build fails or
        takes longer than the build timeout."""
        ready = self.ready_interpreter(environment)
        if ready is not None or environment is None:
            return ready or self.worker_python
        key = self.key(environment)
        build = self._builds.get(key)
        if build is None:
            task = asyncio.get_running_loop().create_task(self._build(key, environment, model))
            build = self._builds[key] = _Build(task, time.monotonic())
            task.add_done_callback(self._forget_build)
        return await asyncio.shield(build.task)

    def _forget_build(self, task: asyncio.Task[str]) -> None:
        for key, build in list(self._builds.items()):
            if build.task is task:
                del self._builds[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has seen it already

    async def _build(self, key: str, environment: Environment, model: str) -> str:
        directory = self.cache_dir / key
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            plan = self._plan(directory, environment)
            self._emit("environment_build_started", {
                "environment": key, "model": model, "python": environment.python_minor,
                "requirements": list(environment.requirements), "installer": plan.installer,
            })  # fmt: skip
            async with asyncio.timeout(self.build_timeout_s), _file_lock(directory):
                if not (directory / MARKER_FILE).is_file():  # else another process built it
                    await build_environment(plan, lambda line: self._progress(key, line))
        except (EnvironmentBuildFailed, OSError, TimeoutError) as exc:
            error = _failure_text(exc, self.build_timeout_s)
            self._failures[key] = error
            shutil.rmtree(directory, ignore_errors=True)
            self._emit("environment_build_failed", {"environment": key, "error": error})
            raise EnvironmentBuildFailed(
                f"building the environment {key} ({', '.join(environment.requirements)}) "
                f"failed: {error}"
            ) from exc
        self._failures.pop(key, None)
        seconds = round(time.monotonic() - started, 2)
        self._emit("environment_build_finished", {"environment": key, "seconds": seconds})
        return str(venv_python(directory))

    def _plan(self, directory: Path, environment: Environment) -> BuildPlan:
        uv = shutil.which("uv") if self.installer in ("auto", "uv") else None
        if self.installer == "uv" and uv is None:
            raise EnvironmentBuildFailed("env_installer is 'uv' but no uv is on PATH")
        requirements = [*self.worker_requirements, *environment.requirements]
        return BuildPlan(directory, environment.python_minor, requirements,
                         "uv" if uv else "pip", uv)  # fmt: skip

    def _progress(self, key: str, message: str) -> None:
        build = self._builds.get(key)
        if build is not None:
            build.last_message = message
        self._emit("environment_build_progress", {"environment": key, "message": message})

    def _emit(self, kind: str, detail: Mapping[str, object]) -> None:
        log.info("%s %s", kind, dict(detail))
        if self.events is not None:
            try:
                self.events(kind, detail)
            except Exception:
                log.exception("could not record the event %s", kind)

    def _worker_interpreter(self) -> InterpreterInfo:
        """What the worker interpreter has: this process's, looked up per package, or
        another interpreter's, probed once (~0.1 s, in a subprocess)."""
        if self.worker_python == sys.executable:
            return this_interpreter()
        if self._interpreter is None:
            self._interpreter = probe_interpreter(self.worker_python)
        return self._interpreter

    async def aclose(self) -> None:
        """Cancel builds in flight (their installers are killed)."""
        tasks = [build.task for build in self._builds.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _failure_text(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"the build took longer than {timeout_s:g} s (env_build_timeout_s)"
    return str(exc)


@contextlib.asynccontextmanager
async def _file_lock(directory: Path) -> AsyncIterator[None]:
    """An exclusive lock on `<directory>.lock`, shared with other processes. flock has no
    way to wait asynchronously, so waiting polls (only while another process builds)."""
    fd = os.open(f"{directory}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _worker_requirements() -> tuple[str, ...]:
    """`WORKER_PACKAGES` with the version ranges of Clipper's installed metadata."""
    try:
        declared = metadata.requires("clipper-serving") or []
    except metadata.PackageNotFoundError:
        declared = []
    found: dict[str, str] = {}
    for line in declared:
        requirement = parse_requirement(line)
        if requirement is None:
            continue
        if requirement.name.lower() in WORKER_PACKAGES and requirement.marker is None:
            found[requirement.name.lower()] = f"{requirement.name}{requirement.specifier}"
    return tuple(found.get(name, name) for name in WORKER_PACKAGES)
