"""Cluster operations behind the admin API: registry changes, then the world follows.

Every change is one registry transaction followed by `refresh()`, which hands the new
snapshot to the dataplane (routing) and the reconciler (replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import shutil
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from clipper.control.autoscaler import Decision
from clipper.control.autoscaling_config import AutoscalingConfig
from clipper.control.environment_deploy import environment_info, prepare_environment
from clipper.control.reconciler import Reconciler, ReplicaState, ReplicaStatus
from clipper.control.store import Registry, check_overload, check_priority
from clipper.core.config import Settings
from clipper.core.exceptions import (
    ApplicationNotFound,
    Conflict,
    DeployFailed,
    InvalidRequest,
    ModelNotFound,
)
from clipper.core.payload_config import PayloadLogConfig, parse_payload_log
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.resources import DefaultMemoryLimit
from clipper.core.types import InputType, ModelId, ReplicaId, validate_name, validate_version
from clipper.dataplane.dataplane import DataPlane
from clipper.environments.manager import EnvironmentManager
from clipper.payloads.sinks import check_sink_available
from clipper.placement.base import ReplicaLaunch
from clipper.selection import configure

__all__ = ["ClusterService"]

log = logging.getLogger("clipper.control")

MAX_DEFAULT_OUTPUT_BYTES = 64 * 1024

DRAIN_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 120.0


class ClusterService:
    """Applies admin operations to the registry, dataplane and reconciler."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        dataplane: DataPlane,
        reconciler: Reconciler,
        rpc_address: str,
        environments: EnvironmentManager | None = None,
    ) -> None:
        self.settings = settings
        self.environments = environments
        self.registry = registry
        self.dataplane = dataplane
        self.reconciler = reconciler
        self.rpc_address = rpc_address
        self.state_dir = settings.resolved_state_dir()
        self.snapshot = RegistrySnapshot()
        self.autoscaling: dict[ModelId, AutoscalingConfig] = {}
        """The autoscaled versions' settings, as of the last `refresh()`."""
        self.autoscaling_decisions: dict[ModelId, dict[str, Any]] = {}
        self.frontend_addresses: tuple[str, ...] = ()
        """The query frontends' RPC addresses every replica serves (none with one frontend:
        the server's own data plane answers queries)."""
        self.snapshot_listeners: list[Callable[[RegistrySnapshot], None]] = []
        """Told each new snapshot after the data plane (the payload log, clipper.payloads)."""
        self.refresh_listeners: list[Callable[[], Awaitable[None]]] = []
        """Awaited at the end of each `refresh()`: the query frontends reading the new
        state (clipper.frontends), so an admin call returns once every frontend serves it."""

    # -- the one path from registry to the running world ---------------------------

    async def refresh(self) -> None:
        """Adopt the registry's current state in the dataplane and the reconciler."""
        self.snapshot = self.registry.snapshot()
        self._load_autoscaling()
        removed = self.dataplane.apply(self.snapshot)
        self.dataplane.set_scale_to_zero(
            [model_id for model_id, config in self.autoscaling.items() if config.scales_to_zero]
        )
        for listener in self.snapshot_listeners:
            listener(self.snapshot)
        for app, why in self.dataplane.take_state_resets():
            self.registry.record_event("policy_state_reset", {"app": app, "reason": why})
        self.reconciler.set_desired(self._desired_launches())
        await asyncio.gather(*(serving.close() for serving in removed))
        await self.announce()

    async def announce(self) -> None:
        """Wait for the `refresh_listeners` (every frontend reads the registry now): after a
        write the snapshot does not hold, such as the query tokens."""
        for caught_up in self.refresh_listeners:
            await caught_up()

    def _load_autoscaling(self) -> None:
        self.autoscaling, self.autoscaling_decisions = {}, {}
        for (name, version), (config, decision) in self.registry.autoscaling().items():
            model_id = ModelId(name, version)
            self.autoscaling[model_id] = AutoscalingConfig.parse(config)
            if decision is not None:
                self.autoscaling_decisions[model_id] = decision

    def _desired_launches(self) -> list[ReplicaLaunch]:
        launches = []
        for model_id, record in self.snapshot.versions.items():
            if record.containerless:
                continue
            for replica in range(record.num_replicas):
                launches.append(self._launch(ReplicaId(model_id, replica), record))
        return launches

    def _launch(self, replica_id: ReplicaId, record: ModelVersionRecord) -> ReplicaLaunch:
        model = replica_id.model
        log_name = f"{model.name}-{model.version}-{replica_id.replica}.log"
        return ReplicaLaunch(
            replica_id=replica_id,
            input_type=record.input_type,
            artifact=Path(record.model_data_path),
            rpc_address=self.rpc_address,
            log_path=self.state_dir / "logs" / log_name,
            heartbeat_interval_s=self.settings.heartbeat_interval_s,
            spin_us=self.settings.worker_spin_us,
            resources=record.resources,
            log_max_bytes=self.settings.log_max_bytes,
            log_backups=self.settings.log_backups,
            default_memory_limit=DefaultMemoryLimit.parse(self.settings.replica_memory_limit),
            frontends=self.frontend_addresses,
        )

    # -- applications -------------------------------------------------------------------

    async def add_app(
        self,
        name: str,
        input_type: InputType,
        default_output: str,
        latency_slo_us: int,
        policy: str = "single",
        policy_params: Mapping[str, Any] | None = None,
        show_model_errors: bool = False,
        overload: str = "default",
        payload_log: Mapping[str, Any] | None = None,
        priority: int = 0,
    ) -> None:
        """Register an application (with a selection policy, `single` by default).
        `overload` is what its queries refused by admission control get; `payload_log`
        where a record of its queries goes (clipper.core.payload_config; None: nowhere);
        `priority` its class (clipper.core.records.PRIORITIES, higher served first)."""
        validate_name(name, "application name")
        _check_app_answer(latency_slo_us, default_output)
        params = dict(policy_params or {})
        configure(policy, params)
        check_overload(overload)
        check_priority(priority)
        payloads = parse_payload_log(payload_log)
        check_sink_available(payloads)
        added = self.registry.add_app(
            AppRecord(
                name,
                input_type,
                default_output,
                latency_slo_us,
                policy,
                True,
                params,
                show_model_errors=show_model_errors,
                overload=overload,
                payload_log=payloads,
                priority=priority,
            )
        )
        if not added:
            return  # exactly this app exists already: a script run again
        self.registry.record_event("add_app", {"name": name})
        await self.refresh()

    async def update_app(
        self,
        name: str,
        latency_slo_us: int | None = None,
        default_output: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        """Change an app's latency SLO, default output and priority class (None: keep it),
        checked as `add_app` checks them; its queries use them from the refresh on. The
        app's info."""
        if latency_slo_us is None and default_output is None and priority is None:
            raise InvalidRequest("give latency_slo_micros, default_output or priority")
        _check_app_answer(latency_slo_us, default_output)
        if priority is not None:
            check_priority(priority)
        self.registry.update_app(name, latency_slo_us, default_output, priority)
        asked = {
            "latency_slo_micros": latency_slo_us,
            "default_output": default_output,
            "priority": priority,
        }
        changed = [key for key, value in asked.items() if value is not None]
        self.registry.record_event("update_app", {"name": name, "changed": changed})
        await self.refresh()
        info = self.app_info(name)
        if info is None:  # deleted by another registry user since
            raise ApplicationNotFound(f"No application with name '{name}'")
        return info

    async def delete_app(self, name: str) -> None:
        """Remove an application; its models stay."""
        self.registry.delete_app(name)
        self.registry.record_event("delete_app", {"name": name})
        await self.refresh()

    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        """Link models to an app."""
        self.registry.add_links(app_name, model_names)
        await self.refresh()

    async def delete_links(self, app_name: str, model_names: list[str]) -> None:
        """Unlink models from an app."""
        self.registry.delete_links(app_name, model_names)
        await self.refresh()

    def app_info(self, name: str) -> dict[str, Any] | None:
        """Clipper's app info dict, or None."""
        app = self.registry.get_app(name)
        if app is None:
            return None
        return {
            "name": app.name,
            "input_type": app.input_type.value,
            "default_output": app.default_output,
            "latency_slo_micros": app.latency_slo_us,
            "linked_models": self.registry.linked_models(name),
            "policy": app.policy,
            "cache_enabled": app.cache_enabled,
            "policy_params": dict(app.policy_params),
            "pipeline": list(app.pipeline),
            "show_model_errors": app.show_model_errors,
            "overload": app.overload,
            "priority": app.priority,
            "payload_log": None if app.payload_log is None else app.payload_log.to_dict(),
            "policy_state": self.dataplane.policy_view(name),
        }

    def all_apps(self, verbose: bool) -> list[Any]:
        """App names, or info dicts."""
        apps = self.registry.list_apps()
        if not verbose:
            return [app.name for app in apps]
        return [self.app_info(app.name) for app in apps]

    # -- models -------------------------------------------------------------------------

    def artifact_dir(self, name: str, version: str) -> Path:
        """Where a version's artifact lives."""
        return self.state_dir / "models" / name / version

    def store_artifact(self, name: str, version: str, archive: bytes) -> Path:
        """Unpack an uploaded tar archive as the version's artifact (atomically)."""
        validate_name(name, "model name")
        version = validate_version(version)
        if self.registry.get_model_version(name, version) is not None:
            raise Conflict(
                f"model version {name}:{version} is registered; its artifact is fixed: deploy "
                f"it as a new version (the next is {self.registry.next_version(name)})"
            )
        target = self.artifact_dir(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise InvalidRequest(f"artifact is not a valid tar archive: {exc}") from exc
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    async def add_model(
        self,
        record: ModelVersionRecord,
        ready_timeout_s: float = READY_TIMEOUT_S,
        *,
        replicas_given: bool = True,
        autoscaling: AutoscalingConfig | None = None,
        make_current: bool = True,
        payload_log_given: bool = True,
    ) -> None:
        """Register a version, start its replicas and, once they are all ready, make it
        current (roll forward): traffic never moves to a version that cannot answer. If
        the replicas fail to start, the version is removed again and DeployFailed raised.

        Replicas follow the current version: without `replicas_given`, the version gets as
        many replicas as the current one has (at least one; one for a new model), and once
        this deploy has made it current, the version that was current is scaled to zero
        (still registered, so a rollback brings it back). Without `autoscaling` and
        `replicas_given`, the version is autoscaled as the current version is, if it is;
        an autoscaled version starts within its bounds. Without `make_current` the deploy
        ends once the replicas are ready and the version stays non-current (a canary
        rollout, clipper.control.rollouts, takes it from there). Without
        `payload_log_given`, the version logs its queries as the current version does.
        """
        if record.containerless and autoscaling is not None:
            raise InvalidRequest("a containerless model cannot be autoscaled")
        if not payload_log_given:
            record = dataclasses.replace(record, payload_log=self._current_payload_log(record.name))
        check_sink_available(record.payload_log)
        if not record.containerless:
            if not replicas_given:
                autoscaling = autoscaling or self._current_autoscaling(record.name)
                record = dataclasses.replace(
                    record, num_replicas=self._following_replicas(record.name)
                )
            if autoscaling is not None:
                replicas = min(max(record.num_replicas, autoscaling.min_replicas),
                               autoscaling.max_replicas)  # fmt: skip
                record = dataclasses.replace(record, num_replicas=replicas)
            path = Path(record.model_data_path or self.artifact_dir(record.name, record.version))
            if not (path / "clipper_model.json").is_file():
                raise InvalidRequest(
                    f"no artifact for {record.name}:{record.version} at {path}; upload it first "
                    "(PUT /admin/artifacts/<name>/<version>)"
                )
            record = _replace_path(record, str(path))
            if record.num_replicas > 0:
                await self.prepare_environment(record.name, record.version, path)
        waits = record.num_replicas > 0
        self.registry.add_model_version(record, make_current=not waits)
        if autoscaling is not None:
            self.registry.set_autoscaling(record.name, record.version, autoscaling.to_dict())
        self.registry.record_event("add_model", {"model": f"{record.name}:{record.version}"})
        await self.refresh()
        if not waits:
            return
        try:
            await self.wait_ready(record.model_id, ready_timeout_s)
        except DeployFailed:
            await self.delete_version(record.name, record.version)
            raise
        if not make_current:
            self.registry.finish_deploy(record.name, record.version)
            return
        previous = self.registry.get_current_version(record.name)
        self.registry.set_current_version(record.name, record.version)
        if previous is not None and previous != record.version:
            self._scale_to_zero(record.name, previous)
        await self.refresh()  # traffic moves to the new version; the old one drains, then stops

    def roll_back_unfinished_deploys(self) -> list[str]:
        """At start, before anything runs: unregister each version whose deploy did not
        finish (its server died while its replicas started; the deploy never answered), and
        remove its artifact, so that the same deploy can run again. Logged, and recorded as
        `deploy_rolled_back` events; the versions rolled back."""
        rolled_back = []
        for name, version in self.registry.pending_deploys():
            self.registry.delete_model_version(name, version)
            shutil.rmtree(self.artifact_dir(name, version), ignore_errors=True)
            self.registry.record_event("deploy_rolled_back", {"model": f"{name}:{version}"})
            log.warning("rolled back the unfinished deploy of %s:%s (the server stopped during "
                        "it); deploy it again", name, version)  # fmt: skip
            rolled_back.append(f"{name}:{version}")
        return rolled_back

    async def prepare_environment(
        self, name: str, version: str, path: Path | None = None
    ) -> dict[str, Any]:
        """Make the uploaded artifact's environment ready (see clipper.control.environment_deploy);
        a failed build removes the artifact of a version not yet registered."""
        version = validate_version(version)
        artifact = path or self.artifact_dir(name, version)
        registered = self.registry.get_model_version(name, version) is not None
        return await prepare_environment(
            self.environments, f"{name}:{version}", artifact, self.registry.record_event,
            discard_on_failure=not registered,
        )  # fmt: skip

    async def set_current_version(
        self, name: str, version: str, ready_timeout_s: float = READY_TIMEOUT_S
    ) -> None:
        """Roll forward or back to a registered version, once its replicas are ready.

        A version scaled to zero gets as many replicas as the current version has (at
        least one) first.
        """
        version = validate_version(version)
        self.refuse_under_rollout(name, "set its current version")
        record = self.registry.get_model_version(name, version)
        if record is None:
            self.registry.set_current_version(name, version)  # raises the right NotFound
            return
        if not record.containerless:
            if record.num_replicas == 0:
                self.registry.set_num_replicas(name, version, self._following_replicas(name))
                await self.refresh()
            await self.wait_ready(record.model_id, ready_timeout_s)
        self.registry.set_current_version(name, version)
        self.registry.record_event("set_model_version", {"model": name, "version": version})
        await self.refresh()

    async def delete_version(self, name: str, version: str) -> None:
        """Stop a version's replicas and unregister it; Conflict while a rollout of the
        model runs from or to it."""
        version = validate_version(version)
        rollout = self.registry.latest_rollout(name)
        running = rollout is not None and rollout.state == "running"
        if rollout is not None and running and version in (rollout.version, rollout.baseline):
            raise Conflict(
                f"{name}:{version} is under a rollout ({rollout.baseline} -> "
                f"{rollout.version}): abort or promote it before deleting the version"
            )
        record = self.registry.get_model_version(name, version)
        if record is None:
            self.registry.delete_model_version(name, version)  # raises the right NotFound
        elif record.num_replicas:
            # Scale to zero first: the reconciler drains each replica before it stops.
            self.registry.set_num_replicas(name, version, 0)
            await self.refresh()
            await self._wait_replicas_gone(record.model_id, DRAIN_TIMEOUT_S + 10)
        await self.dataplane.drain_model(ModelId(name, version), DRAIN_TIMEOUT_S)
        self.registry.delete_model_version(name, version)
        self.registry.record_event("delete_model_version", {"model": f"{name}:{version}"})
        await self.refresh()
        shutil.rmtree(self.artifact_dir(name, version), ignore_errors=True)

    def refuse_under_rollout(self, name: str, what: str) -> None:
        """Conflict if a rollout of model `name` runs (`what` could not be done)."""
        rollout = self.registry.latest_rollout(name)
        if rollout is not None and rollout.state == "running":
            raise Conflict(
                f"model {name} is under a rollout to version {rollout.version}: abort or "
                f"promote it before you {what}"
            )

    def _following_replicas(self, name: str) -> int:
        """Replicas of a version deployed without a count: the current version's, at least 1."""
        return max(1, self._current_replicas(name))

    def _current_autoscaling(self, name: str) -> AutoscalingConfig | None:
        current = self.registry.get_current_version(name)
        return None if current is None else self.autoscaling.get(ModelId(name, current))

    def _scale_to_zero(self, name: str, version: str) -> None:
        """Set a version that stopped being current to no replicas (registry only)."""
        record = self.registry.get_model_version(name, version)
        if record is None or record.containerless or record.num_replicas == 0:
            return
        self.registry.set_num_replicas(name, version, 0)
        log.info("%s:%s is no longer current: scaled from %d replicas to 0 (set-version or "
                 "rollback brings it back)", name, version, record.num_replicas)  # fmt: skip

    def _current_replicas(self, name: str) -> int:
        current = self.registry.get_current_version(name)
        record = self.registry.get_model_version(name, current) if current else None
        return record.num_replicas if record is not None else 0

    def _current_payload_log(self, name: str) -> PayloadLogConfig | None:
        current = self.registry.get_current_version(name)
        record = self.registry.get_model_version(name, current) if current else None
        return record.payload_log if record is not None else None

    def resolve_version(self, name: str, version: str | None) -> str:
        """`version`, or the model's current version."""
        if version is not None:
            return validate_version(version)
        current = self.registry.get_current_version(name)
        if current is None:
            raise ModelNotFound(f"No model with name '{name}' (or it has no current version)")
        return current

    async def set_num_replicas(self, name: str, num_replicas: int, version: str | None) -> None:
        """Scale a version (default: current) to `num_replicas`; Conflict while it is
        autoscaled (the autoscaler owns its count: change its bounds, or turn it off)."""
        resolved = self.resolve_version(name, version)
        config = self.autoscaling.get(ModelId(name, resolved))
        if config is not None:
            raise Conflict(
                f"{name}:{resolved} is autoscaled between {config.min_replicas} and "
                f"{config.max_replicas} replicas: change its bounds with set_autoscaling, "
                "or turn autoscaling off (set_autoscaling null) to set its replicas by hand"
            )
        self.registry.set_num_replicas(name, resolved, num_replicas)
        await self.refresh()

    async def set_autoscaling(
        self, name: str, version: str | None, config: AutoscalingConfig | None
    ) -> ModelVersionRecord:
        """Autoscale a version (default: current) within `config`, or stop (None): its
        count then stays where the autoscaler left it."""
        resolved = self.resolve_version(name, version)
        self.registry.set_autoscaling(name, resolved, None if config is None else config.to_dict())
        detail = {"model": f"{name}:{resolved}", "autoscaling": config and config.to_dict()}
        self.registry.record_event("set_autoscaling", detail)
        await self.refresh()
        return self.snapshot.versions[ModelId(name, resolved)]

    async def apply_autoscaling(self, model_id: ModelId, decision: Decision) -> None:
        """Record an autoscaler decision (last decision and `autoscaled` event) and, when it
        moves the target, scale the version (the path `set_num_replicas` takes)."""
        detail = {
            "model": str(model_id),
            "from": decision.current,
            "to": decision.desired,
            "reason": decision.reason,
            "capped": decision.capped,
            "ts": time.time(),
        }
        target = decision.desired if decision.changes else None
        self.registry.record_autoscaled(model_id.name, model_id.version, target, detail)
        await self.refresh()

    async def set_batch_policy(
        self,
        name: str,
        version: str | None,
        batch_size: int | None,
        wait_timeout_us: int | None,
        max_in_flight: int | None,
    ) -> ModelVersionRecord:
        """Change a version's batching; unspecified settings keep their values."""
        resolved = self.resolve_version(name, version)
        record = self.registry.get_model_version(name, resolved)
        if record is None:
            raise ModelNotFound(f"No model with name '{name}' and version '{resolved}'")
        self.registry.set_batch_policy(
            name,
            resolved,
            record.batch_size if batch_size is None else batch_size,
            record.batch_wait_timeout_us if wait_timeout_us is None else wait_timeout_us,
            record.max_in_flight if max_in_flight is None else max_in_flight,
        )
        await self.refresh()
        return self.snapshot.versions[ModelId(name, resolved)]

    async def set_cache(self, app_name: str | None, model_name: str | None, on: bool) -> None:
        """Turn the prediction cache on or off for an app or a model."""
        if (app_name is None) == (model_name is None):
            raise InvalidRequest("give exactly one of app_name and model_name")
        if app_name is not None:
            self.registry.set_app_cache(app_name, on)
        elif model_name is not None:
            self.registry.set_model_cache(model_name, on)
        await self.refresh()

    async def set_show_model_errors(self, app_name: str, show: bool) -> None:
        """Let an app's clients read its models' exception text (development), or not."""
        self.registry.set_app_show_model_errors(app_name, show)
        self.registry.record_event("set_show_model_errors", {"name": app_name, "show": show})
        await self.refresh()

    async def set_app_overload(self, app_name: str, overload: str) -> None:
        """What an app's queries refused by admission control get: the default output
        (`default`) or an error (`reject`)."""
        self.registry.set_app_overload(app_name, overload)
        self.registry.record_event("set_app_overload", {"name": app_name, "overload": overload})
        await self.refresh()

    async def set_payload_log(
        self, app_name: str, payload_log: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Where a record of each sampled query of an app goes (None: logging off); the
        setting as stored."""
        config = parse_payload_log(payload_log)
        check_sink_available(config)
        self.registry.set_app_payload_log(app_name, config)
        shown = None if config is None else config.to_dict()
        self.registry.record_event("set_payload_log", {"name": app_name, "payload_log": shown})
        await self.refresh()
        return shown

    async def set_model_payload_log(
        self, name: str, version: str | None, payload_log: Mapping[str, Any] | None
    ) -> ModelVersionRecord:
        """Where a record of each query a version (default: current) answered goes, whichever
        app asked (None: logging off); the version as stored."""
        config = parse_payload_log(payload_log)
        check_sink_available(config)
        resolved = self.resolve_version(name, version)
        self.registry.set_version_payload_log(name, resolved, config)
        shown = None if config is None else config.to_dict()
        detail = {"model": f"{name}:{resolved}", "payload_log": shown}
        self.registry.record_event("set_model_payload_log", detail)
        await self.refresh()
        return self.snapshot.versions[ModelId(name, resolved)]

    def model_info(self, record: ModelVersionRecord) -> dict[str, Any]:
        """Clipper's model info dict."""
        current = self.snapshot.current_versions.get(record.name)
        return {
            "model_name": record.name,
            "model_version": record.version,
            "input_type": record.input_type.value,
            "labels": list(record.labels),
            "container_name": record.container_name,
            "model_data_path": record.model_data_path,
            "is_current_version": current == record.version,
            "batch_size": record.batch_size,
            "batch_wait_timeout_micros": record.batch_wait_timeout_us,
            "max_in_flight": record.max_in_flight,
            "max_queued": record.max_queued,
            "payload_log": None if record.payload_log is None else record.payload_log.to_dict(),
            "cache_enabled": record.cache_enabled,
            "num_replicas": record.num_replicas,
            "ready_replicas": self._ready_count(record.model_id),
            "containerless": record.containerless,
            "output_type": record.output_type.value if record.output_type else None,
            "signature": orjson.loads(record.signature) if record.signature else None,
            "resources": record.resources.to_dict(),
            "autoscaling": self._autoscaling_info(record.model_id),
            "autoscaling_last_decision": self.autoscaling_decisions.get(record.model_id),
            "cold": self.is_cold(record.model_id),
            **environment_info(self.environments, Path(record.model_data_path)),
        }

    def is_cold(self, model_id: ModelId) -> bool:
        """Whether a version that may scale to zero has no ready replica: at zero (its next
        query starts one), or starting the one a query asked for."""
        config = self.autoscaling.get(model_id)
        return config is not None and config.scales_to_zero and not self._ready_count(model_id)

    def cold_versions(self) -> list[str]:
        """`name:version` of each cold version (see `is_cold`), sorted."""
        return sorted(str(model_id) for model_id in self.autoscaling if self.is_cold(model_id))

    def _autoscaling_info(self, model_id: ModelId) -> dict[str, Any] | None:
        config = self.autoscaling.get(model_id)
        return None if config is None else config.to_dict()

    # -- replicas -----------------------------------------------------------------------

    def replica_info(self, replica_id: ReplicaId) -> dict[str, Any] | None:
        """Clipper's replica info dict, plus state, pid and connection."""
        status = self.reconciler.replicas.get(replica_id)
        serving = self.dataplane.serving(replica_id.model)
        connected = serving is not None and replica_id.replica in serving.replicas
        if status is None and not connected:
            return None
        record = self.snapshot.versions.get(replica_id.model)
        placement = status.placement if status else None
        return {
            "model_id": str(replica_id.model),
            "model_name": replica_id.model.name,
            "model_version": replica_id.model.version,
            "model_replica_id": replica_id.replica,
            "input_type": record.input_type.value if record else None,
            "state": _state_name(status, connected),
            "pid": status.pid if status else None,
            "connected": connected,
            "restarts": status.crashes if status else 0,
            "last_error": status.last_error[-1000:] if status else "",
            "node": placement.node if placement else None,
            "node_id": placement.node_id if placement else None,
            "reason": placement.unschedulable if placement and not connected else None,
        }

    def all_replicas(self) -> list[ReplicaId]:
        """Every replica known to the reconciler or connected (external workers)."""
        found = set(self.reconciler.replicas)
        for model_id in self.snapshot.versions:
            serving = self.dataplane.serving(model_id)
            if serving is not None:
                found.update(ReplicaId(model_id, replica) for replica in serving.replicas)
        return sorted(found, key=lambda r: (r.model.name, r.model.version, r.replica))

    async def wait_ready(self, model_id: ModelId, timeout_s: float) -> int:
        """Wait until every target replica of a version is connected.

        DeployFailed with the worker's output if a replica exits before it ever became
        ready, or on timeout.
        """
        record = self.snapshot.versions.get(model_id)
        if record is None:
            raise ModelNotFound(
                f"No model with name '{model_id.name}' and version '{model_id.version}'"
            )
        deadline = time.monotonic() + timeout_s
        async with self.reconciler.changed:
            while True:
                ready = self._ready_count(model_id)
                if ready >= record.num_replicas:
                    return ready
                self._raise_if_failed(model_id)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeployFailed(
                        f"{model_id}: {ready} of {record.num_replicas} replicas ready after "
                        f"{timeout_s:g} s{self._unschedulable_reasons(model_id)}"
                    )
                try:
                    await asyncio.wait_for(self.reconciler.changed.wait(), remaining)
                except TimeoutError:
                    continue

    async def _wait_replicas_gone(self, model_id: ModelId, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        async with self.reconciler.changed:
            while self.reconciler.replicas_of(model_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.reconciler.changed.wait(), remaining)

    def _ready_count(self, model_id: ModelId) -> int:
        serving = self.dataplane.serving(model_id)
        return serving.ready_replicas if serving is not None else 0

    def _unschedulable_reasons(self, model_id: ModelId) -> str:
        statuses = self.reconciler.replicas_of(model_id)
        return "".join(
            f"\nreplica {s.launch.replica_id} is unschedulable: {s.placement.unschedulable}"
            for s in statuses
            if s.placement.unschedulable
        )

    def _raise_if_failed(self, model_id: ModelId) -> None:
        for status in self.reconciler.replicas_of(model_id):
            if not status.ever_ready and status.last_exit_code is not None:
                raise DeployFailed(
                    f"replica {status.launch.replica_id} exited with code "
                    f"{status.last_exit_code} before it was ready"
                    f"{_failure_reason(status.last_error)}:\n{status.last_error}"
                )


def _check_app_answer(latency_slo_us: int | None, default_output: str | None) -> None:
    """What `add_app` and `update_app` accept as an app's SLO and default output."""
    if latency_slo_us is not None and latency_slo_us <= 0:
        raise InvalidRequest("latency_slo_micros must be a positive integer")
    if default_output is not None and len(default_output.encode()) > MAX_DEFAULT_OUTPUT_BYTES:
        raise InvalidRequest(
            f"default_output is over {MAX_DEFAULT_OUTPUT_BYTES} bytes: a default answer is "
            "sent with every query that misses its SLO"
        )


def _failure_reason(log_tail: str) -> str:
    """`": <why>"` from the last line of a worker's log that says why it could not start."""
    for line in reversed(log_tail.splitlines()):
        for marker in ("could not load the model: ", "environment build failed: "):
            if marker in line:
                return ": " + line.split(marker, 1)[1]
    return ""


def _state_name(status: ReplicaStatus | None, connected: bool) -> str:
    if status is None:
        return ReplicaState.READY.value if connected else "unknown"
    if status.state is ReplicaState.STARTING and connected:
        return ReplicaState.READY.value
    if status.state is ReplicaState.STARTING and status.placement.unschedulable:
        return ReplicaState.UNSCHEDULABLE.value
    return status.state.value


def _replace_path(record: ModelVersionRecord, path: str) -> ModelVersionRecord:
    return dataclasses.replace(record, model_data_path=path)
