"""`ClipperConnection`: Clipper's Python admin API, a thin layer over the admin client.

Names and versions are validated (and versions stringified) before any request; errors
are the `ClipperException`s the clients raise, translated once in `clipper.client`.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipper.artifacts import directory_artifact, load_artifact_metadata, pack_directory
from clipper.client import AdminClient, ServerUnreachable
from clipper.exceptions import InvalidInput, ModelError, NotFound
from clipper.types import InputType, parse_input_type, validate_name, validate_version
from clipper_admin.container_manager import ContainerManager
from clipper_admin.exceptions import UnconnectedException

__all__ = ["ClipperConnection"]

Version = str | int

_NUMERIC_DTYPES: dict[InputType, np.dtype[Any]] = {
    InputType.INTEGERS: np.dtype(np.int32),
    InputType.FLOATS: np.dtype(np.float32),
    InputType.DOUBLES: np.dtype(np.float64),
}
# numpy dtype kinds accepted for each numeric type, as the server does (ints are fine floats).
_ACCEPTED_KINDS = {InputType.INTEGERS: "iu", InputType.FLOATS: "iuf", InputType.DOUBLES: "iuf"}


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
                f"Could not connect to Clipper cluster at {self.cm.get_admin_addr()}: {exc}"
            ) from exc
        self.close()
        self._admin = admin
        self.connected = True

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
        self, name: str, input_type: str, default_output: str, slo_micros: int
    ) -> None:
        """Register an app, served at `/<name>/predict`; error if it exists."""
        admin = self._admin_api()
        input_type = parse_input_type(input_type).value
        admin.add_app(validate_name(name), input_type, default_output, slo_micros)

    def unregister_application(self, name: str) -> None:
        """Remove an app; its models stay."""
        self._admin_api().delete_app(validate_name(name))

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
        admin.add_model_links(validate_name(app_name), [validate_name(model_name)])

    def unlink_model_from_app(self, app_name: str, model_name: str) -> None:
        """Remove a link; error if there is none."""
        admin = self._admin_api()
        admin.delete_model_links(validate_name(app_name), [validate_name(model_name)])

    def get_all_apps(self, verbose: bool = False) -> list[Any]:
        """App names, or app info dicts when `verbose`."""
        return self._admin_api().get_all_applications(verbose)

    def get_app_info(self, name: str) -> dict[str, Any] | None:
        """The app info dict, or None for an unknown app."""
        admin = self._admin_api()
        try:
            return admin.get_application(validate_name(name))
        except NotFound:
            return None

    def get_linked_models(self, app_name: str) -> list[str]:
        """Names of the models linked to the app (`[]` when none)."""
        return self._admin_api().get_linked_models(validate_name(app_name))

    # -- models -------------------------------------------------------------------------

    def deploy_model(
        self,
        name: str,
        version: Version,
        input_type: str,
        image: str,
        labels: Sequence[str] | None = None,
        num_replicas: int = 1,
        batch_size: int = -1,
    ) -> None:
        """Deploy the artifact at `image` (a directory or archive holding `clipper_model.json`).

        Returns once the version's replicas are ready; it becomes the current version.
        """
        self._admin_api()
        validate_name(name)
        version = validate_version(version)
        artifact = _read_artifact(Path(image))
        self.deploy_artifact(
            name, version, input_type, artifact, str(image), labels, num_replicas, batch_size
        )

    def deploy_artifact(
        self,
        name: str,
        version: Version,
        input_type: str,
        artifact: bytes,
        container_name: str = "",
        labels: Sequence[str] | None = None,
        num_replicas: int = 1,
        batch_size: int = -1,
        ready_timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """Upload an artifact archive, register the version, wait for its replicas (ours)."""
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
    ) -> str:
        """Package a model directory (with `predict.py` defining `predict(inputs)`).

        Returns the path of the built artifact archive, to pass to `deploy_model` as `image`;
        nothing is pushed anywhere.
        """
        validate_name(name)
        version = validate_version(version)
        model_dir = Path(model_data_path)
        metadata = directory_artifact(model_dir, pkgs_to_install=pkgs_to_install or ())
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
        num_replicas: int = 1,
        batch_size: int = -1,
        pkgs_to_install: Sequence[str] | None = None,
    ) -> None:
        """`build_model`, then `deploy_model` of the result."""
        self._admin_api()
        parse_input_type(input_type)
        image = self.build_model(
            name, version, model_data_path, base_image, container_registry, pkgs_to_install
        )
        self.deploy_model(name, version, input_type, image, labels, num_replicas, batch_size)

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
        name, version = validate_name(name), validate_version(version)
        if num_replicas is not None:
            admin.set_num_replicas(name, num_replicas, version)
            if num_replicas > 0:
                admin.wait_model_ready(name, version)
        admin.set_model_version(name, version)

    def get_current_model_version(self, name: str) -> str:
        """The model's current version."""
        return self._admin_api().get_current_model_version(validate_name(name))

    def set_num_replicas(
        self, name: str, num_replicas: int, version: Version | None = None
    ) -> None:
        """Scale a version (default: current) and wait until its replicas are ready."""
        admin = self._admin_api()
        version = None if version is None else validate_version(version)
        info = admin.set_num_replicas(validate_name(name), num_replicas, version)
        if num_replicas > 0:
            admin.wait_model_ready(name, str(info["model_version"]))

    def get_num_replicas(self, name: str, version: Version | None = None) -> int:
        """The replica target of a version (default: current)."""
        version = None if version is None else validate_version(version)
        return self._admin_api().get_num_replicas(validate_name(name), version)

    def get_all_models(self, verbose: bool = False) -> list[Any]:
        """`"name:version"` strings, or model info dicts when `verbose`."""
        return self._admin_api().get_all_models(verbose)

    def get_model_info(self, name: str, version: Version) -> dict[str, Any] | None:
        """The model info dict, or None for an unknown version."""
        admin = self._admin_api()
        try:
            return admin.get_model(validate_name(name), validate_version(version))
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
            return admin.get_container(validate_name(name), validate_version(version), replica_id)
        except NotFound:
            return None

    # -- stopping models ----------------------------------------------------------------

    def stop_models(self, model_names: Iterable[str]) -> None:
        """Stop and unregister every version of these models."""
        names = {validate_name(name) for name in model_names}
        self._stop_versions(lambda info: info["model_name"] in names)

    def stop_versioned_models(self, model_versions_dict: Mapping[str, Iterable[Version]]) -> None:
        """Stop and unregister the given versions: `{name: [versions]}`."""
        wanted = {
            (validate_name(name), validate_version(version))
            for name, versions in model_versions_dict.items()
            for version in versions
        }
        self._stop_versions(lambda info: (info["model_name"], info["model_version"]) in wanted)

    def stop_inactive_model_versions(self, model_names: Iterable[str]) -> None:
        """Stop and unregister every version of these models except the current one."""
        names = {validate_name(name) for name in model_names}
        self._stop_versions(
            lambda info: info["model_name"] in names and not info["is_current_version"]
        )

    def stop_all_model_containers(self) -> None:
        """Stop and unregister every model version."""
        self._stop_versions(lambda info: True)

    # -- local testing ------------------------------------------------------------------

    def test_predict_function(
        self, query: Mapping[str, Any], func: Callable[[list[Any]], Any], input_type: str
    ) -> Any:
        """Run `func` locally on a query dict (`{"input": x}` or `{"input_batch": [...]}`).

        Inputs are decoded as the server decodes them (numpy arrays for numeric types, str
        for strings, base64-decoded bytes for bytes); returns `func`'s outputs.
        """
        kind = parse_input_type(input_type)
        inputs = [_decode_input(value, kind) for value in _query_inputs(query)]
        outputs = func(inputs)
        try:
            count = len(outputs)
        except TypeError as exc:
            raise ModelError(
                f"The function returned a {type(outputs).__name__}, not a list"
            ) from exc
        if count != len(inputs):
            raise ModelError(f"The function returned {count} outputs for {len(inputs)} inputs")
        return outputs

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


def _query_inputs(query: Mapping[str, Any]) -> list[Any]:
    keys = set(query) & {"input", "input_batch"}
    if len(keys) != 1:
        raise InvalidInput("The query needs exactly one of the keys 'input' and 'input_batch'")
    if "input" in query:
        return [query["input"]]
    batch = query["input_batch"]
    if not isinstance(batch, list):
        raise InvalidInput("'input_batch' must be a list of inputs")
    return batch


def _decode_input(value: Any, input_type: InputType) -> Any:
    """One JSON input as a model function receives it."""
    dtype = _NUMERIC_DTYPES.get(input_type)
    if dtype is not None:
        return _decode_numeric(value, input_type, dtype)
    if not isinstance(value, str):
        raise InvalidInput(f"Expected a string for {input_type.value}, got {value!r:.80}")
    if input_type is InputType.STRINGS:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"Invalid base64 in a bytes input: {exc}") from exc


def _decode_numeric(value: Any, input_type: InputType, dtype: np.dtype[Any]) -> Any:
    if not isinstance(value, list):
        raise InvalidInput(f"Expected a list of numbers for {input_type.value}, got {value!r:.80}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"Input is not a flat list of numbers: {exc}") from exc
    if value and (array.ndim != 1 or array.dtype.kind not in _ACCEPTED_KINDS[input_type]):
        raise InvalidInput(f"Input is not a flat list of {input_type.value}: {value!r:.80}")
    if input_type is InputType.INTEGERS and value:
        limits = np.iinfo(np.int32)
        if array.max() > limits.max or array.min() < limits.min:
            raise InvalidInput("Integer input out of the 32-bit range")
    return array.astype(dtype)
