"""`ClipperConnection`: Clipper's Python admin API, a thin layer over the admin client.

Names and versions are validated (and versions stringified) before any request; errors
are the `ClipperException`s the clients raise, translated once in `clipper.client`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clipper.artifacts.format import load_artifact_metadata, pack_directory
from clipper.artifacts.python import directory_artifact
from clipper.client import AdminClient, ServerUnreachable
from clipper.core.exceptions import InvalidName, NotFound
from clipper.core.types import parse_input_type, validate_name, validate_version
from clipper.environments.declare import EnvironmentArg
from clipper.worker.local import run_query_locally
from clipper_admin.container_manager import ContainerManager
from clipper_admin.exceptions import UnconnectedException

__all__ = ["ClipperConnection", "print_progress"]

Version = str | int


def print_progress(line: str) -> None:
    """Print one line of deploy progress (an environment build's steps) to stderr."""
    print(f"[clipper] {line}", file=sys.stderr, flush=True)


def lookup_name(name: object) -> str:
    """A name to look up: any text (name rules apply when something is created; a name
    that breaks them names nothing, and the server says "not found")."""
    if not isinstance(name, str):
        raise InvalidName(f"Invalid name {name!r}: must be a string")
    return name


def lookup_version(version: object) -> str:
    """A version to look up: text, or an integer (as Clipper accepted)."""
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise InvalidName(f"Invalid version {version!r}: must be a string or an integer")
    return str(version)


class ClipperConnection:
    """A connection to one Clipper cluster, run by `container_manager`."""

    def __init__(self, container_manager: ContainerManager) -> None:
        self.cm = container_manager
        self.connected = False
        self._admin: AdminClient | None = None

    # -- cluster ------------------------------------------------------------------------

    def start_clipper(self, *args: object, timeout_s: float = 30.0, **kwargs: object) -> None:
        """Start the cluster and connect once its query and admin APIs answer.

        Clipper's image and frontend-tuning arguments are accepted and ignored.
        """
        self.cm.start_clipper(timeout_s)
        self.connect()

    def connect(self) -> None:
        """Connect to a running cluster; raises ClipperException when it does not answer."""
        admin = AdminClient.from_settings(self.cm.settings, keep_alive=False)
        try:
            admin.ping()
        except ServerUnreachable as exc:
            admin.close()
            raise ServerUnreachable(
                f"Could not connect to Clipper cluster {self.cm.settings.cluster_name!r} at "
                f"{self.cm.get_admin_addr()} ({self._address_origin()}): {exc}. Start it "
                f"with `clipper start`, or ClipperConnection(...).start_clipper()"
            ) from exc
        self.close()
        self._admin = admin
        self.connected = True

    def _address_origin(self) -> str:
        """Where the admin address came from, when the manager can say."""
        origin_of = getattr(self.cm, "origin_of", None)
        if origin_of is None:
            return "from the container manager"
        return f"host from {origin_of('host')}, port from {origin_of('admin_port')}"

    def close(self) -> None:
        """Forget the connection (the cluster keeps running)."""
        if self._admin is not None:
            self._admin.close()
        self._admin = None
        self.connected = False

    def stop_all(self, graceful: bool = True) -> None:
        """Stop this cluster's server and all its replicas."""
        self.close()
        self.cm.stop_all(graceful)

    def get_query_addr(self) -> str:
        """`"host:port"` of the query API."""
        self._admin_api()
        return self.cm.get_query_addr()

    def get_admin_addr(self) -> str:
        """`"host:port"` of the admin API."""
        self._admin_api()
        return self.cm.get_admin_addr()

    def get_metric_addr(self) -> str:
        """`"host:port"` serving Prometheus metrics at `/metrics`."""
        self._admin_api()
        return self.cm.get_metric_addr()

    def inspect_instance(self) -> dict[str, Any]:
        """The server's metrics as a dict."""
        return self._admin_api().metrics()

    def get_clipper_logs(self, logging_dir: str = "clipper_logs/") -> list[str]:
        """Write the server's and each replica's log into `logging_dir`; return the paths."""
        return [str(path) for path in self._admin_api().save_logs(Path(logging_dir))]

    # -- applications -------------------------------------------------------------------

    def register_application(
        self,
        name: str,
        input_type: str,
        default_output: str,
        slo_micros: int,
        policy: str = "single",
        policy_params: Mapping[str, Any] | None = None,
        show_model_errors: bool = False,
        overload: str = "default",
        priority: int = 0,
    ) -> None:
        """Register an app, served at `/<name>/predict`; error if it exists.

        Ours: `policy` selects among the app's linked models (`single`, `ab`,
        `epsilon_greedy`, `thompson`, `exp3`, `exp4`, `shadow`; see clipper.selection).
        `show_model_errors` lets the app's clients read a model's exception text in a
        default answer (for development; by default they get its type and a query id).
        `overload` is what a query refused by admission control gets: the default output
        (`default`, Clipper's way) or an error (`reject`: 429 with Retry-After).
        `priority` is its class, 0 (default) to 9: under contention higher classes are
        served first and shed last.
        """
        admin = self._admin_api()
        input_type = parse_input_type(input_type).value
        admin.add_app(
            validate_name(name),
            input_type,
            default_output,
            slo_micros,
            policy,
            policy_params,
            show_model_errors,
            overload,
            priority=priority,
        )

    def update_application(
        self,
        name: str,
        slo_micros: int | None = None,
        default_output: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Change a registered app's latency SLO, default output and priority class (an
        extension: Clipper 0.4.1 cannot change an app short of unregistering it). One left
        None stays; the app's next query uses the new ones, and they outlast a restart."""
        self._admin_api().update_app(
            lookup_name(name),
            latency_slo_micros=slo_micros,
            default_output=default_output,
            priority=priority,
        )

    def set_app_policy(self, app_name: str, policy: str, **params: Any) -> None:
        """Change an app's selection policy (ours); `params` are the policy's parameters,
        e.g. `set_app_policy("app", "ab", weights={"a": 9, "b": 1})`. Switching to another
        policy forgets what the old one learned."""
        self._admin_api().set_app_policy(lookup_name(app_name), policy, params)

    def set_app_pipeline(self, app_name: str, model_names: Sequence[str]) -> None:
        """Make an app a pipeline (ours): each model's output is the next one's input. The
        types must chain (deploy every step but the last with `output_type`); an empty
        list makes the app plain again."""
        names = [lookup_name(model) for model in model_names]
        self._admin_api().set_app_pipeline(lookup_name(app_name), names)

    def set_app_model_errors(self, app_name: str, show: bool) -> None:
        """Whether the app's default answers carry its models' exception text (ours)."""
        self._admin_api().set_app_model_errors(lookup_name(app_name), show)

    def set_app_overload(self, app_name: str, overload: str) -> None:
        """What the app's queries refused by admission control get (ours): its default
        output (`default`) or an error (`reject`: 429 with Retry-After)."""
        self._admin_api().set_app_overload(lookup_name(app_name), overload)

    def set_payload_log(self, app_name: str, payload_log: Mapping[str, Any] | None) -> None:
        """Record each sampled query of the app and its feedback (ours): `payload_log` is
        `{"sink": "jsonl" | "cloudevents:URL" | "redis://HOST:PORT/STREAM", "sample": 0.1,
        "fields": [...]}`; None turns it off."""
        self._admin_api().set_payload_log(lookup_name(app_name), payload_log)

    def set_model_payload_log(
        self, name: str, payload_log: Mapping[str, Any] | None, version: Version | None = None
    ) -> None:
        """Record each query a model version (default: current) answered, whichever app
        asked (ours); `payload_log` as `set_payload_log`, None turns it off."""
        self._admin_api().set_model_payload_log(
            validate_name(name), payload_log, None if version is None else validate_version(version)
        )

    def unregister_application(self, name: str) -> None:
        """Remove an app; its models stay."""
        self._admin_api().delete_app(lookup_name(name))

    def delete_application(self, name: str) -> None:
        """Deprecated alias of `unregister_application`."""
        warnings.warn(
            "delete_application is deprecated, use unregister_application",
            DeprecationWarning,
            stacklevel=2,
        )
        self.unregister_application(name)

    def link_model_to_app(self, app_name: str, model_name: str) -> None:
        """Route the app's queries to the model (both must exist, with equal input types)."""
        admin = self._admin_api()
        admin.add_model_links(lookup_name(app_name), [lookup_name(model_name)])

    def unlink_model_from_app(self, app_name: str, model_name: str) -> None:
        """Remove a link; error if there is none."""
        admin = self._admin_api()
        admin.delete_model_links(lookup_name(app_name), [lookup_name(model_name)])

    def get_all_apps(self, verbose: bool = False) -> list[Any]:
        """App names, or app info dicts when `verbose`."""
        return self._admin_api().get_all_applications(verbose)

    def get_app_info(self, name: str) -> dict[str, Any] | None:
        """The app info dict, or None for an unknown app."""
        admin = self._admin_api()
        try:
            return admin.get_application(lookup_name(name))
        except NotFound:
            return None

    def get_linked_models(self, app_name: str) -> list[str]:
        """Names of the models linked to the app (`[]` when none)."""
        return self._admin_api().get_linked_models(lookup_name(app_name))

    # -- models -------------------------------------------------------------------------

    def deploy_model(
        self,
        name: str,
        version: Version,
        input_type: str,
        image: str,
        labels: Sequence[str] | None = None,
        num_replicas: int | None = None,
        batch_size: int = -1,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        """Deploy the artifact at `image` (a directory or archive holding `clipper_model.json`).

        Returns once the version's replicas are ready; it becomes the current version.
        `num_replicas` None (ours; Clipper's default is 1): as many as the current version
        has, 1 for a new model; the version it replaces is scaled to zero once it is
        current. `resources` (ours) is what each replica asks of its node on Ray, e.g.
        `{"num_cpus": 1, "num_gpus": 0.5, "resources": {"my_resource": 1}}`.
        """
        self._admin_api()
        validate_name(name)
        version = validate_version(version)
        artifact = _read_artifact(Path(image))
        self.deploy_artifact(
            name, version, input_type, artifact, str(image), labels, num_replicas, batch_size,
            resources=resources,
        )  # fmt: skip

    def deploy_artifact(
        self,
        name: str,
        version: Version,
        input_type: str,
        artifact: bytes,
        container_name: str = "",
        labels: Sequence[str] | None = None,
        num_replicas: int | None = None,
        batch_size: int = -1,
        ready_timeout_s: float = 60.0,
        signature: dict[str, Any] | str | None = None,
        progress: Callable[[str], None] | None = print_progress,
        output_type: str | None = None,
        resources: Mapping[str, Any] | None = None,
        autoscaling: Mapping[str, Any] | None = None,
        payload_log: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Upload an artifact archive, prepare its environment, register the version, wait
        for its replicas (ours). Environment builds are reported line by line to `progress`
        (default: printed to stderr; None: silent).

        `signature` declares the model's Open Inference Protocol inputs and outputs;
        `output_type` the type of its outputs as the next step's input in a pipeline;
        `resources` what each replica asks of its node (Ray placement); `autoscaling`
        (`{"min_replicas", "max_replicas", ...}`) scales it against its SLO (see
        `set_autoscaling`); `payload_log` records each query it answers (see
        `set_model_payload_log`; None: as the current version does); `task` serves it
        through the OpenAI-compatible API (`text-generation`, `chat`, `embedding`:
        clipper.core.generation)."""
        admin = self._admin_api()
        return admin.deploy_artifact(
            validate_name(name),
            validate_version(version),
            parse_input_type(input_type).value,
            artifact,
            labels=labels or (),
            container_name=container_name,
            batch_size=batch_size,
            num_replicas=num_replicas,
            ready_timeout_s=ready_timeout_s,
            signature=signature,
            output_type=None if output_type is None else parse_input_type(output_type).value,
            progress=progress,
            resources=resources,
            autoscaling=autoscaling,
            payload_log=payload_log,
            task=task,
        )

    def build_model(
        self,
        name: str,
        version: Version,
        model_data_path: str,
        base_image: str = "default",
        container_registry: str | None = None,
        pkgs_to_install: Sequence[str] | None = None,
        build_quiet: bool = False,
        environment: EnvironmentArg = None,
    ) -> str:
        """Package a model directory: `predict.py` defining `predict(inputs)` or a class with
        `load(self, path)` (given the directory) and `predict(self, inputs)`.

        The environment is `requirements.txt` when the directory has one, else the installed
        versions of what its `.py` files import (or `environment`: "capture", a requirements
        file or a list), plus `pkgs_to_install`. Returns the path of the built artifact
        archive, to pass to `deploy_model` as `image`; nothing is pushed anywhere.
        """
        validate_name(name)
        version = validate_version(version)
        model_dir = Path(model_data_path)
        metadata = directory_artifact(
            model_dir, environment=environment, pkgs_to_install=pkgs_to_install or ()
        )
        archive = self.cm.settings.resolved_state_dir() / "builds" / f"{name}-{version}.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(pack_directory(model_dir, metadata))
        return str(archive)

    def build_and_deploy_model(
        self,
        name: str,
        version: Version,
        input_type: str,
        model_data_path: str,
        base_image: str = "default",
        labels: Sequence[str] | None = None,
        container_registry: str | None = None,
        num_replicas: int | None = None,
        batch_size: int = -1,
        pkgs_to_install: Sequence[str] | None = None,
        environment: EnvironmentArg = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        """`build_model`, then `deploy_model` of the result."""
        self._admin_api()
        parse_input_type(input_type)
        image = self.build_model(
            name, version, model_data_path, base_image, container_registry, pkgs_to_install,
            environment=environment,
        )  # fmt: skip
        self.deploy_model(
            name, version, input_type, image, labels, num_replicas, batch_size, resources
        )

    def register_model(
        self,
        name: str,
        version: Version,
        input_type: str,
        image: str | None = None,
        labels: Sequence[str] | None = None,
        batch_size: int = -1,
    ) -> None:
        """Register a containerless version (served by an external worker); starts nothing."""
        self._admin_api().add_model(
            validate_name(name),
            validate_version(version),
            parse_input_type(input_type).value,
            labels=labels or (),
            container_name=image or "",
            batch_size=batch_size,
            num_replicas=0,
            containerless=True,
        )

    def set_model_version(
        self, name: str, version: Version, num_replicas: int | None = None
    ) -> None:
        """Make a registered version current, first scaling it to `num_replicas` if given."""
        admin = self._admin_api()
        name, version = lookup_name(name), lookup_version(version)
        if num_replicas is not None:
            admin.set_num_replicas(name, num_replicas, version)
            if num_replicas > 0:
                admin.wait_model_ready(name, version)
        admin.set_model_version(name, version)

    def start_rollout(
        self, name: str, version: Version, plan: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Roll a registered version out against the current one, step by step, judged on
        the live traffic (ours; `plan` None: the defaults, README.md#canary-rollouts).
        Returns the rollout's status; `get_rollout` follows it."""
        return self._admin_api().start_rollout(lookup_name(name), lookup_version(version), plan)

    def get_rollout(self, name: str) -> dict[str, Any] | None:
        """The model's running rollout, else its last one (None: it never had one)."""
        return self._admin_api().get_rollout(lookup_name(name))

    def promote_rollout(self, name: str) -> dict[str, Any]:
        """Make the version under rollout current now."""
        return self._admin_api().promote_rollout(lookup_name(name))

    def pause_rollout(self, name: str) -> dict[str, Any]:
        """Hold the model's rollout where it is (its step's time left kept)."""
        return self._admin_api().pause_rollout(lookup_name(name))

    def resume_rollout(self, name: str) -> dict[str, Any]:
        """Go on with the model's paused rollout."""
        return self._admin_api().resume_rollout(lookup_name(name))

    def abort_rollout(self, name: str) -> dict[str, Any]:
        """Stop the model's rollout: all traffic back to the current version."""
        return self._admin_api().abort_rollout(lookup_name(name))

    def get_current_model_version(self, name: str) -> str:
        """The model's current version."""
        return self._admin_api().get_current_model_version(lookup_name(name))

    def set_num_replicas(
        self, name: str, num_replicas: int, version: Version | None = None
    ) -> None:
        """Scale a version (default: current) and wait until its replicas are ready."""
        admin = self._admin_api()
        version = None if version is None else lookup_version(version)
        info = admin.set_num_replicas(lookup_name(name), num_replicas, version)
        if num_replicas > 0:
            admin.wait_model_ready(name, str(info["model_version"]))

    def set_autoscaling(
        self,
        name: str,
        autoscaling: Mapping[str, Any] | None,
        version: Version | None = None,
    ) -> dict[str, Any]:
        """Scale a version (default: current) against its SLO between
        `autoscaling["min_replicas"]` and `["max_replicas"]` (ours; README.md#autoscaling
        lists the other settings), or stop (None). While a version is autoscaled,
        `set_num_replicas` on it is refused. Returns its model info dict."""
        version = None if version is None else lookup_version(version)
        return self._admin_api().set_autoscaling(lookup_name(name), autoscaling, version)

    def get_num_replicas(self, name: str, version: Version | None = None) -> int:
        """The replica target of a version (default: current)."""
        version = None if version is None else lookup_version(version)
        return self._admin_api().get_num_replicas(lookup_name(name), version)

    def get_all_models(self, verbose: bool = False) -> list[Any]:
        """`"name:version"` strings, or model info dicts when `verbose`."""
        return self._admin_api().get_all_models(verbose)

    def get_model_info(self, name: str, version: Version) -> dict[str, Any] | None:
        """The model info dict, or None for an unknown version."""
        admin = self._admin_api()
        try:
            return admin.get_model(lookup_name(name), lookup_version(version))
        except NotFound:
            return None

    def get_all_model_replicas(self, verbose: bool = False) -> list[Any]:
        """`"name:version:replica_id"` strings, or replica info dicts when `verbose`."""
        return self._admin_api().get_all_containers(verbose)

    def get_model_replica_info(
        self, name: str, version: Version, replica_id: int
    ) -> dict[str, Any] | None:
        """The replica info dict, or None for an unknown replica."""
        admin = self._admin_api()
        try:
            return admin.get_container(lookup_name(name), lookup_version(version), replica_id)
        except NotFound:
            return None

    # -- stopping models ----------------------------------------------------------------

    def stop_models(self, model_names: Iterable[str]) -> None:
        """Stop and unregister every version of these models."""
        names = {lookup_name(name) for name in model_names}
        self._stop_versions(lambda info: info["model_name"] in names)

    def stop_versioned_models(self, model_versions_dict: Mapping[str, Iterable[Version]]) -> None:
        """Stop and unregister the given versions: `{name: [versions]}`."""
        wanted = {
            (lookup_name(name), lookup_version(version))
            for name, versions in model_versions_dict.items()
            for version in versions
        }
        self._stop_versions(lambda info: (info["model_name"], info["model_version"]) in wanted)

    def stop_inactive_model_versions(self, model_names: Iterable[str]) -> None:
        """Stop and unregister every version of these models except the current one."""
        names = {lookup_name(name) for name in model_names}
        self._stop_versions(
            lambda info: info["model_name"] in names and not info["is_current_version"]
        )

    def stop_all_model_containers(self) -> None:
        """Stop and unregister every model version."""
        self._stop_versions(lambda info: True)

    # -- local testing ------------------------------------------------------------------

    def test_predict_function(
        self,
        query: Mapping[str, Any],
        func: Callable[[list[Any]], Any] | type | object,
        input_type: str,
        model_data_path: str | None = None,
    ) -> list[Any]:
        """Run a model locally on a query dict (`{"input": x}` or `{"input_batch": [...]}`)
        exactly as a worker would: inputs validated and decoded as the server and worker do
        (numpy arrays for numeric types, str for strings, base64-decoded bytes for bytes), a
        class instantiated and `load(model_data_path)`-ed, an async predict awaited, and the
        outputs checked (one per input) and converted as the worker sends them.

        InvalidInput for inputs the server would refuse; ModelError for a wrong number of
        outputs; whatever the model raises propagates. Needs no connection.
        """
        return run_query_locally(query, func, parse_input_type(input_type), model_data_path)

    # -- helpers ------------------------------------------------------------------------

    def _admin_api(self) -> AdminClient:
        if not self.connected or self._admin is None:
            raise UnconnectedException()
        return self._admin

    def _stop_versions(self, selected: Callable[[dict[str, Any]], bool]) -> None:
        admin = self._admin_api()
        for info in admin.get_all_models(verbose=True):
            if selected(info):
                admin.delete_versioned_model(info["model_name"], info["model_version"])


def _read_artifact(image: Path) -> bytes:
    """The archive to upload for `image`: a packed directory, or an archive file as is."""
    load_artifact_metadata(image)
    return pack_directory(image) if image.is_dir() else image.read_bytes()
