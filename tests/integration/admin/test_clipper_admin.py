"""Clipper's `clipper_admin` API against a real cluster: the tutorial, then every method.

One cluster is shared by the module (started with `start_clipper`); every test creates its
own uniquely named apps and models, so the tests do not depend on each other's order.
Tests that stop or restart a whole cluster start their own.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipper.artifacts.python import closure_artifact
from clipper.rpc.secret import SECRET_ENV, load_or_create_secret
from clipper_admin import (
    ClipperConnection,
    ClipperException,
    LocalContainerManager,
    UnconnectedException,
)
from clipper_admin.deployers import python as python_deployer
from tests.integration.clipper_admin_cluster import admin_cluster, admin_replica_pids
from tests.integration.cluster import (
    free_port,
    pid_alive,
    wait_pids_exit,
    wait_until,
)

pytestmark = pytest.mark.integration

NO_MODELS = "No connected models found for query"
MODEL_INFO_KEYS = {
    "model_name",
    "model_version",
    "input_type",
    "labels",
    "container_name",
    "model_data_path",
    "is_current_version",
}
REPLICA_INFO_KEYS = {"model_id", "model_name", "model_version", "model_replica_id", "input_type"}
APP_INFO_KEYS = {"name", "input_type", "default_output", "latency_slo_micros", "linked_models"}
_counter = itertools.count()


def unique(prefix: str) -> str:
    """A fresh valid name, so tests sharing the cluster never collide."""
    return f"{prefix}-{next(_counter)}"


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClipperConnection]:
    """One started cluster for the module."""
    with admin_cluster(tmp_path_factory.mktemp("admin") / "state", "admin-tests") as connection:
        yield connection


def feature_sum(xs: list[Any]) -> list[float]:
    """The tutorial's model: the sum of each input vector."""
    return [sum(x) for x in xs]


def constant(value: float) -> Callable[[list[Any]], list[float]]:
    """A model answering `value` for every input (to tell versions apart)."""
    return lambda xs: [value for _ in xs]


def predict(conn: ClipperConnection, app: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"http://{conn.get_query_addr()}/{app}/predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def deploy_app(
    conn: ClipperConnection,
    func: Callable[[list[Any]], Any],
    prefix: str,
    input_type: str = "doubles",
    **deploy_kwargs: Any,
) -> str:
    """Register app and model `name` (unique), deploy `func` as version 1, link; returns name."""
    name = unique(prefix)
    conn.register_application(name, input_type, "-1.0", 1_000_000)
    python_deployer.deploy_python_closure(
        conn, name=name, version=1, input_type=input_type, func=func, **deploy_kwargs
    )
    conn.link_model_to_app(name, name)
    return name


def replica_pids(conn: ClipperConnection, name: str, version: str | None = None) -> list[int]:
    return [
        replica["pid"]
        for replica in conn.get_all_model_replicas(verbose=True)
        if replica["model_name"] == name
        and (version is None or replica["model_version"] == version)
        and replica["pid"]
    ]


def answers(conn: ClipperConnection, app: str, body: dict[str, Any]) -> Any:
    """The reply once it is a model's answer (not a default), else None (for wait_until)."""
    reply = predict(conn, app, body)
    return None if reply["default"] else reply


# -- the tutorial -----------------------------------------------------------------------


def test_hello_world_tutorial(conn: ClipperConnection) -> None:
    conn.register_application(
        name="hello-world", input_type="doubles", default_output="-1.0", slo_micros=100000
    )
    python_deployer.deploy_python_closure(
        conn, name="sum-model", version=1, input_type="doubles", func=feature_sum
    )
    conn.link_model_to_app(app_name="hello-world", model_name="sum-model")

    single = predict(conn, "hello-world", {"input": [1.1, 2.2, 3.3]})
    assert single["output"] == pytest.approx(6.6)
    assert single["default"] is False
    assert isinstance(single["query_id"], int)
    batch = predict(conn, "hello-world", {"input_batch": [[1.1, 2.2, 3.3], [4.4, 5.5, 6.6]]})
    outputs = [reply["output"] for reply in batch["batch_predictions"]]
    assert outputs == pytest.approx([6.6, 16.5])
    assert [reply["default"] for reply in batch["batch_predictions"]] == [False, False]


def test_create_endpoint_registers_deploys_and_links(conn: ClipperConnection) -> None:
    name = unique("endpoint")
    python_deployer.create_endpoint(conn, name, "doubles", feature_sum, default_output="0")
    assert conn.get_linked_models(name) == [name]
    assert conn.get_current_model_version(name) == "1"
    assert predict(conn, name, {"input": [1.0, 2.0]})["output"] == pytest.approx(3.0)


# -- connecting -------------------------------------------------------------------------


def test_methods_need_a_connection_and_connect_joins_a_running_cluster(
    conn: ClipperConnection,
) -> None:
    other = ClipperConnection(LocalContainerManager(**_manager_args(conn)))
    for call in (
        lambda: other.get_all_apps(),
        lambda: other.register_application("x", "doubles", "0", 1000),
        lambda: other.get_query_addr(),
        lambda: other.inspect_instance(),
    ):
        with pytest.raises(UnconnectedException):
            call()
    app = unique("seen")
    conn.register_application(app, "doubles", "0", 100_000)
    other.connect()
    assert app in other.get_all_apps()
    assert other.get_admin_addr() == conn.get_admin_addr()


def test_connect_without_a_server_raises(tmp_path: Path) -> None:
    manager = LocalContainerManager(clipper_management_port=free_port(), state_dir=tmp_path)
    with pytest.raises(ClipperException):
        ClipperConnection(manager).connect()


def _manager_args(conn: ClipperConnection) -> dict[str, Any]:
    settings = conn.cm.settings
    return {
        "cluster_name": settings.cluster_name,
        "clipper_query_port": settings.query_port,
        "clipper_management_port": settings.admin_port,
        "clipper_rpc_port": settings.rpc_port,
        "state_dir": settings.state_dir,
    }


# -- applications and links -------------------------------------------------------------


def test_register_and_unregister_applications(conn: ClipperConnection) -> None:
    app = unique("app")
    conn.register_application(app, "doubles", "-1.0", 100_000)
    info = conn.get_app_info(app)
    assert info is not None
    assert set(info) >= APP_INFO_KEYS
    assert (info["name"], info["input_type"], info["default_output"]) == (app, "doubles", "-1.0")
    assert (info["latency_slo_micros"], info["linked_models"]) == (100_000, [])
    assert app in conn.get_all_apps()
    assert info in conn.get_all_apps(verbose=True)
    conn.register_application(app, "doubles", "-1.0", 100_000)  # the same again: quietly
    with pytest.raises(ClipperException, match="already exists with latency_slo_micros"):
        conn.register_application(app, "doubles", "-1.0", 200_000)

    conn.unregister_application(app)
    assert conn.get_app_info(app) is None
    assert app not in conn.get_all_apps()
    with pytest.raises(ClipperException):
        conn.unregister_application(app)


def test_update_application_changes_the_slo_and_default_output(conn: ClipperConnection) -> None:
    app = unique("updated")
    conn.register_application(app, "doubles", "-1.0", 100_000)
    conn.update_application(app, slo_micros=5_000)
    conn.update_application(app, default_output="0.25")

    info = conn.get_app_info(app)
    assert info is not None
    assert (info["latency_slo_micros"], info["default_output"]) == (5_000, "0.25")
    assert predict(conn, app, {"input": [1.0]})["output"] == 0.25  # no model: the default
    with pytest.raises(ClipperException, match="positive"):
        conn.update_application(app, slo_micros=-1)
    with pytest.raises(ClipperException):
        conn.update_application(unique("never"), slo_micros=1_000)


def test_delete_application_is_a_deprecated_alias(conn: ClipperConnection) -> None:
    app = unique("old")
    conn.register_application(app, "strings", "none", 100_000)
    with pytest.warns(DeprecationWarning, match="unregister_application"):
        conn.delete_application(app)
    assert conn.get_app_info(app) is None


def test_get_app_info_of_an_unknown_app_is_none(conn: ClipperConnection) -> None:
    assert conn.get_app_info(unique("never")) is None
    assert conn.get_linked_models(unique("never")) == []


def test_unregistering_an_app_keeps_its_models(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "keep")
    conn.unregister_application(name)
    assert f"{name}:1" in conn.get_all_models()
    conn.register_application(name, "doubles", "-1.0", 100_000)
    conn.link_model_to_app(name, name)
    assert predict(conn, name, {"input": [2.0, 3.0]})["output"] == pytest.approx(5.0)


def test_link_and_unlink(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "link")
    other_app = unique("other")
    conn.register_application(other_app, "doubles", "7", 100_000)
    with pytest.raises(ClipperException, match="No model with name"):
        conn.link_model_to_app(other_app, unique("ghost"))
    with pytest.raises(ClipperException):
        conn.link_model_to_app(unique("ghost"), name)

    conn.link_model_to_app(other_app, name)
    assert conn.get_linked_models(other_app) == [name]
    assert conn.get_app_info(other_app)["linked_models"] == [name]  # type: ignore[index]
    assert predict(conn, other_app, {"input": [1.0, 1.0]})["output"] == pytest.approx(2.0)

    conn.unlink_model_from_app(other_app, name)
    assert conn.get_linked_models(other_app) == []
    reply = predict(conn, other_app, {"input": [1.0, 1.0]})
    assert (reply["output"], reply["default"]) == (7, True)
    assert reply["default_explanation"] == NO_MODELS
    with pytest.raises(ClipperException):
        conn.unlink_model_from_app(other_app, name)


def test_link_needs_equal_input_types(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "typed")
    strings_app = unique("strapp")
    conn.register_application(strings_app, "strings", "none", 100_000)
    with pytest.raises(ClipperException, match="input type"):
        conn.link_model_to_app(strings_app, name)
    assert conn.get_linked_models(strings_app) == []


# -- deploying ----------------------------------------------------------------------------


def test_deploy_model_from_an_artifact_directory_and_archive(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    name = unique("image")
    conn.register_application(name, "doubles", "-1", 1_000_000)
    directory = tmp_path / "artifact"
    with tarfile.open(fileobj=io.BytesIO(closure_artifact(constant(1.0)))) as archive:
        archive.extractall(directory, filter="data")
    conn.deploy_model(name, 1, "doubles", str(directory), labels=["a", "b"], batch_size=4)
    conn.link_model_to_app(name, name)
    info = conn.get_model_info(name, 1)
    assert info is not None
    assert (info["labels"], info["batch_size"], info["container_name"]) == (
        ["a", "b"],
        4,
        str(directory),
    )
    assert predict(conn, name, {"input": [5.0]})["output"] == 1.0

    archive_path = tmp_path / "v2.tar.gz"
    archive_path.write_bytes(closure_artifact(constant(2.0)))
    conn.deploy_model(name, "2", "doubles", str(archive_path))
    assert conn.get_current_model_version(name) == "2"
    assert predict(conn, name, {"input": [5.0]})["output"] == 2.0


def test_build_and_deploy_model_from_a_directory_with_predict_py(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "helper.py").write_text("OFFSET = 100.0\n")
    (model_dir / "predict.py").write_text(
        "import helper\n\n\ndef predict(inputs):\n"
        "    return [helper.OFFSET + float(sum(x)) for x in inputs]\n"
    )
    name = unique("built")
    conn.register_application(name, "doubles", "-1", 1_000_000)
    conn.build_and_deploy_model(
        name, 1, "doubles", str(model_dir), base_image="python", pkgs_to_install=["numpy"]
    )
    conn.link_model_to_app(name, name)
    assert predict(conn, name, {"input": [1.0, 2.0]})["output"] == pytest.approx(103.0)
    info = conn.get_model_info(name, 1)
    assert info is not None
    assert (Path(info["model_data_path"]) / "predict.py").is_file()


def test_deploying_an_existing_version_again_is_refused(conn: ClipperConnection) -> None:
    name = deploy_app(conn, constant(1.0), "twice")
    with pytest.raises(ClipperException):
        python_deployer.deploy_python_closure(conn, name, 1, "doubles", constant(9.0))
    assert predict(conn, name, {"input": [0.0]})["output"] == 1.0


def returns_within(timeout_s: float, call: Callable[[], Any], what: str) -> Any:
    """`call()`'s result, or AssertionError when it takes longer than `timeout_s`.

    The call runs in a helper thread that is left to finish by itself on a timeout.
    """
    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(call)
    executor.shutdown(wait=False)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        raise AssertionError(f"{what} did not return within {timeout_s} s") from None


def test_a_model_that_fails_to_load_raises_quickly_and_leaves_no_version(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    model_dir = tmp_path / "broken"
    model_dir.mkdir()
    (model_dir / "predict.py").write_text(
        "raise RuntimeError('weights file is missing')\n\n\ndef predict(inputs):\n"
        "    return inputs\n"
    )
    name = unique("broken")
    with pytest.raises(ClipperException, match="weights file is missing"):
        returns_within(
            10,
            lambda: conn.build_and_deploy_model(name, 1, "doubles", str(model_dir)),
            "a deploy whose model fails to load",
        )
    assert conn.get_model_info(name, 1) is None
    assert f"{name}:1" not in conn.get_all_models()
    assert not [r for r in conn.get_all_model_replicas() if r.startswith(f"{name}:")]
    # The version is free again: a working artifact deploys under the same name and version.
    python_deployer.deploy_python_closure(conn, name, 1, "doubles", constant(4.0))
    assert conn.get_current_model_version(name) == "1"


def test_register_model_is_containerless_and_served_by_an_external_worker(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    name = unique("external")
    conn.register_application(name, "doubles", "-1", 1_000_000)
    conn.register_model(name, 1, "doubles", labels=["ext"])
    conn.link_model_to_app(name, name)
    info = conn.get_model_info(name, 1)
    assert info is not None
    assert (info["is_current_version"], info["labels"]) == (True, ["ext"])
    assert conn.get_current_model_version(name) == "1"
    with pytest.raises(ClipperException, match="containerless model"):
        conn.set_num_replicas(name, 2)
    assert not [r for r in conn.get_all_model_replicas() if r.startswith(f"{name}:")]

    artifact = tmp_path / "artifact"
    with tarfile.open(fileobj=io.BytesIO(closure_artifact(feature_sum))) as archive:
        archive.extractall(artifact, filter="data")
    state_dir = conn.cm.settings.resolved_state_dir()  # the worker secret is in it
    worker = subprocess.Popen(
        [sys.executable, "-m", "clipper.worker",
         "--connect", f"tcp://127.0.0.1:{conn.cm.settings.rpc_port}",
         "--model", name, "--version", "1", "--replica", "0",
         "--input-type", "doubles", "--artifact", str(artifact)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, SECRET_ENV: load_or_create_secret(state_dir)},
    )  # fmt: skip
    try:
        reply = wait_until(
            lambda: answers(conn, name, {"input": [2.0, 2.5]}), 20, "the external worker"
        )
        assert reply["output"] == pytest.approx(4.5)
        assert f"{name}:1:0" in conn.get_all_model_replicas()
    finally:
        worker.terminate()
        worker.wait(10)


# -- versions and replicas ----------------------------------------------------------------


def test_new_version_rolls_forward_and_set_model_version_rolls_back(
    conn: ClipperConnection,
) -> None:
    name = deploy_app(conn, constant(1.0), "versions")
    assert conn.get_current_model_version(name) == "1"
    python_deployer.deploy_python_closure(conn, name, 2, "doubles", constant(2.0))
    assert conn.get_current_model_version(name) == "2"
    assert predict(conn, name, {"input": [0.0]})["output"] == 2.0
    current = {
        info["model_version"]: info["is_current_version"]
        for info in conn.get_all_models(verbose=True)
        if info["model_name"] == name
    }
    assert current == {"1": False, "2": True}

    conn.set_model_version(name, 1)
    assert conn.get_current_model_version(name) == "1"
    assert predict(conn, name, {"input": [0.0]})["output"] == 1.0
    conn.set_model_version(name, "2", num_replicas=2)
    assert conn.get_current_model_version(name) == "2"
    assert conn.get_num_replicas(name) == 2
    with pytest.raises(ClipperException):
        conn.set_model_version(name, 7)
    assert conn.get_current_model_version(name) == "2"
    with pytest.raises(ClipperException):
        conn.get_current_model_version(unique("ghost"))


def test_a_new_version_without_num_replicas_follows_the_current_one(
    conn: ClipperConnection,
) -> None:
    """Clipper's default num_replicas=1 holds for a new model; a later version deployed
    without it takes the current version's count, and an explicit count wins."""
    name = deploy_app(conn, constant(1.0), "follow")
    assert conn.get_num_replicas(name) == 1
    conn.set_num_replicas(name, 2)
    python_deployer.deploy_python_closure(conn, name, 2, "doubles", constant(2.0))
    assert (conn.get_num_replicas(name), conn.get_num_replicas(name, 1)) == (2, 0)
    python_deployer.deploy_python_closure(conn, name, 3, "doubles", constant(3.0), num_replicas=1)
    assert (conn.get_num_replicas(name), conn.get_num_replicas(name, 2)) == (1, 0)
    assert predict(conn, name, {"input": [0.0]})["output"] == 3.0


def test_set_and_get_num_replicas(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "scale")
    assert conn.get_num_replicas(name) == 1
    conn.set_num_replicas(name, 2)
    assert conn.get_num_replicas(name) == 2
    assert conn.get_num_replicas(name, version=1) == 2
    ours = [r for r in conn.get_all_model_replicas(verbose=True) if r["model_name"] == name]
    assert sorted(r["model_replica_id"] for r in ours) == [0, 1]
    assert {r["state"] for r in ours} == {"ready"}
    pids = replica_pids(conn, name)
    assert len(set(pids)) == 2
    assert all(pid_alive(pid) for pid in pids)

    replica_one = conn.get_model_replica_info(name, 1, 1)
    assert replica_one is not None
    conn.set_num_replicas(name, 1, version="1")
    assert conn.get_num_replicas(name) == 1
    wait_pids_exit([replica_one["pid"]], 15, "the removed replica")
    wait_until(
        lambda: conn.get_model_replica_info(name, 1, 1) is None, 10, "replica 1 to be forgotten"
    )
    assert predict(conn, name, {"input": [1.0, 2.0]})["output"] == pytest.approx(3.0)


def test_model_and_replica_listings(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "listed", labels=["x"])
    assert f"{name}:1" in conn.get_all_models()
    verbose = [info for info in conn.get_all_models(verbose=True) if info["model_name"] == name]
    assert len(verbose) == 1
    assert set(verbose[0]) >= MODEL_INFO_KEYS
    info = conn.get_model_info(name, 1)
    assert info == verbose[0]
    assert info["model_version"] == "1"
    assert (info["input_type"], info["labels"], info["is_current_version"]) == (
        "doubles",
        ["x"],
        True,
    )
    assert info["container_name"] == "default"
    assert (Path(info["model_data_path"]) / "clipper_model.json").is_file()
    assert conn.get_model_info(name, 9) is None

    assert f"{name}:1:0" in conn.get_all_model_replicas()
    replicas = [r for r in conn.get_all_model_replicas(verbose=True) if r["model_name"] == name]
    assert len(replicas) == 1
    assert set(replicas[0]) >= REPLICA_INFO_KEYS
    replica = conn.get_model_replica_info(name, 1, 0)
    assert replica is not None
    assert (replica["model_id"], replica["model_version"], replica["model_replica_id"]) == (
        f"{name}:1",
        "1",
        0,
    )
    assert replica["input_type"] == "doubles"
    assert conn.get_model_replica_info(name, 1, 5) is None


# -- stopping models ----------------------------------------------------------------------


def test_stop_models_versioned_and_inactive(conn: ClipperConnection) -> None:
    inactive = deploy_app(conn, constant(1.0), "inactive")
    python_deployer.deploy_python_closure(conn, inactive, 2, "doubles", constant(2.0))
    versioned = deploy_app(conn, constant(1.0), "versioned")
    python_deployer.deploy_python_closure(conn, versioned, 2, "doubles", constant(2.0))
    whole = deploy_app(conn, constant(1.0), "whole")
    python_deployer.deploy_python_closure(conn, whole, 2, "doubles", constant(2.0))
    # A deploy scales the version it replaces to zero: run the old ones again to stop them.
    for name in (inactive, versioned, whole):
        conn.set_num_replicas(name, 1, version=1)
    old_inactive = replica_pids(conn, inactive, "1")
    old_versioned = replica_pids(conn, versioned, "1")
    all_whole = replica_pids(conn, whole)
    assert len(old_inactive) == len(old_versioned) == 1
    assert len(all_whole) == 2

    conn.stop_inactive_model_versions([inactive])
    conn.stop_versioned_models({versioned: [1]})
    conn.stop_models([whole])

    models = conn.get_all_models()
    assert f"{inactive}:1" not in models
    assert f"{inactive}:2" in models
    assert f"{versioned}:1" not in models
    assert f"{versioned}:2" in models
    assert not [m for m in models if m.startswith(f"{whole}:")]
    wait_pids_exit([*old_inactive, *old_versioned, *all_whole], 15, "a stopped replica")
    assert predict(conn, inactive, {"input": [0.0]})["output"] == 2.0
    assert predict(conn, versioned, {"input": [0.0]})["output"] == 2.0
    assert predict(conn, whole, {"input": [0.0]})["default_explanation"] == NO_MODELS


# -- logs, metrics, addresses ---------------------------------------------------------------


def chatty(xs: list[Any]) -> list[float]:
    """Prints a marker per input (to find it in the replica's log)."""
    for x in xs:
        print(f"chatty-model-saw-{x[0]:g}", flush=True)
    return [1.0 for _ in xs]


def test_get_clipper_logs_writes_server_and_replica_logs(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    name = deploy_app(conn, chatty, "chatty")
    predict(conn, name, {"input": [4242.0]})
    logs_dir = tmp_path / "clipper_logs"

    def replica_log() -> str | None:
        paths = [Path(path) for path in conn.get_clipper_logs(logging_dir=str(logs_dir))]
        assert all(path.is_file() and path.parent == logs_dir for path in paths)
        assert "server.log" in {path.name for path in paths}
        texts = [path.read_text() for path in paths if path.name.startswith(f"{name}-1-")]
        return next((text for text in texts if "chatty-model-saw-4242" in text), None)

    assert wait_until(replica_log, 10, "the model's print in its replica log")


def test_inspect_instance_and_addresses(conn: ClipperConnection) -> None:
    name = deploy_app(conn, feature_sum, "metered")
    predict(conn, name, {"input": [1.0]})
    settings = conn.cm.settings
    assert conn.get_query_addr() == f"127.0.0.1:{settings.query_port}"
    assert conn.get_admin_addr() == f"127.0.0.1:{settings.admin_port}"
    metrics = conn.inspect_instance()
    assert isinstance(metrics, dict)
    assert any(name in key for key in metrics)
    page = httpx.get(f"http://{conn.get_metric_addr()}/metrics", timeout=10)
    assert page.status_code == 200
    assert f'clipper_app_requests_total{{app="{name}"}} 1.0' in page.text
    assert httpx.get(f"http://{conn.get_admin_addr()}/admin/ping", timeout=10).text == "PONG"


# -- local testing of a function ------------------------------------------------------------


def test_test_predict_function_runs_the_function_as_the_server_would(
    conn: ClipperConnection,
) -> None:
    assert conn.test_predict_function({"input": [1.0, 2.0]}, feature_sum, "doubles") == [3.0]
    batch = {"input_batch": [[1, 2], [3, 4]]}
    assert conn.test_predict_function(batch, feature_sum, "ints") == [3, 7]
    upper = conn.test_predict_function({"input": "abc"}, lambda xs: [x.upper() for x in xs], "s")
    assert upper == ["ABC"]
    data = {"input": base64.b64encode(b"\x00\x01\x02").decode()}
    assert conn.test_predict_function(data, lambda xs: [len(x) for x in xs], "bytes") == [3]
    with pytest.raises(ClipperException):
        conn.test_predict_function({"input": [1.0]}, lambda xs: [], "doubles")
    with pytest.raises(ClipperException):
        conn.test_predict_function({"input": ["a"]}, feature_sum, "doubles")


# -- models that misbehave ------------------------------------------------------------------


def raise_value_error(xs: list[Any]) -> list[float]:
    raise ValueError(f"cannot score {len(xs)} input(s)")


def return_nothing(xs: list[Any]) -> list[float]:
    return []


def test_a_model_that_raises_answers_default_with_the_exception(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    """Clients get the exception's type and their query's id; its text is the server log's
    (it may hold the model's data), unless the app shows model errors (development)."""
    name = deploy_app(conn, raise_value_error, "raises")
    pids = replica_pids(conn, name)
    reply = predict(conn, name, {"input": [1.0]})
    assert (reply["default"], reply["output"]) == (True, -1.0)
    assert reply["default_explanation"] == (
        f"Model error: ValueError raised by {name}:1 (its message is in the server log, "
        f"query {reply['query_id']})"
    )
    [server_log] = [p for p in conn.get_clipper_logs(str(tmp_path)) if p.endswith("server.log")]
    logged = [line for line in Path(server_log).read_text().splitlines() if name in line]
    assert any(
        f"queries {reply['query_id']}" in line and "cannot score 1 input(s)" in line
        for line in logged
    ), logged

    conn.set_app_model_errors(name, True)
    assert conn.get_app_info(name)["show_model_errors"] is True
    reply = predict(conn, name, {"input": [2.0]})
    assert reply["default_explanation"] == "Model error: ValueError: cannot score 1 input(s)"
    conn.set_app_model_errors(name, False)
    assert "cannot score" not in predict(conn, name, {"input": [3.0]})["default_explanation"]
    assert replica_pids(conn, name) == pids
    assert all(pid_alive(pid) for pid in pids)
    healthy = deploy_app(conn, feature_sum, "healthy")
    assert predict(conn, healthy, {"input": [1.0, 2.0]})["output"] == pytest.approx(3.0)


def test_a_model_with_the_wrong_number_of_outputs_answers_default(
    conn: ClipperConnection,
) -> None:
    name = deploy_app(conn, return_nothing, "short")
    reply = predict(conn, name, {"input": [1.0]})
    assert (reply["default"], reply["output"]) == (True, -1.0)
    assert "returned 0 outputs" in reply["default_explanation"]
    assert "1 input" in reply["default_explanation"]
    assert predict(conn, name, {"input": [2.0]})["default"] is True


# -- input types ----------------------------------------------------------------------------


def describe(inputs: list[Any]) -> list[list[Any]]:
    """Each input's Python type, numpy dtype (if any) and value, as the model received it."""
    described = []
    for x in inputs:
        if isinstance(x, bytes):
            value: Any = list(x)
        elif hasattr(x, "tolist"):
            value = x.tolist()
        else:
            value = x
        described.append([type(x).__name__, str(getattr(x, "dtype", "")), value])
    return described


@pytest.mark.parametrize(
    ("spelling", "stored", "query_input", "received"),
    [
        ("ints", "integers", [1, -2, 3], ["ndarray", "int32", [1, -2, 3]]),
        ("f", "floats", [1.5, 2], ["ndarray", "float32", [1.5, 2.0]]),
        ("double", "doubles", [0.1, 0.2], ["ndarray", "float64", [0.1, 0.2]]),
        ("str", "strings", "héllo wörld", ["str", "", "héllo wörld"]),
        (
            "b",
            "bytes",
            base64.b64encode(b"\x00\xffbin").decode(),
            ["bytes", "", [0, 255, 98, 105, 110]],
        ),
    ],
)
def test_every_input_type_end_to_end(
    conn: ClipperConnection, spelling: str, stored: str, query_input: Any, received: list[Any]
) -> None:
    name = deploy_app(conn, describe, f"type-{stored}", input_type=spelling)
    assert conn.get_app_info(name)["input_type"] == stored  # type: ignore[index]
    assert conn.get_model_info(name, 1)["input_type"] == stored  # type: ignore[index]
    reply = predict(conn, name, {"input": query_input})
    assert reply["default"] is False, reply
    assert reply["output"] == received


# -- whole clusters -------------------------------------------------------------------------


def test_two_clusters_side_by_side_do_not_see_each_other(
    conn: ClipperConnection, tmp_path: Path
) -> None:
    app = unique("shared-name")
    conn.register_application(app, "doubles", "1", 100_000)
    with admin_cluster(tmp_path / "second", "second-cluster") as second:
        assert second.get_query_addr() != conn.get_query_addr()
        assert second.get_all_apps() == []
        assert second.get_all_models() == []
        second.register_application(app, "doubles", "2", 100_000)
        only_second = unique("only-second")
        second.register_application(only_second, "doubles", "3", 100_000)
        assert only_second not in conn.get_all_apps()
        assert predict(conn, app, {"input": [0.0]})["output"] == 1
        assert predict(second, app, {"input": [0.0]})["output"] == 2
        missing = httpx.post(
            f"http://{conn.get_query_addr()}/{only_second}/predict", json={"input": [0.0]}
        )
        assert missing.status_code == 404
    assert app in conn.get_all_apps()
    assert predict(conn, app, {"input": [0.0]})["output"] == 1


def test_stop_all_then_start_clipper_brings_everything_back(tmp_path: Path) -> None:
    with admin_cluster(tmp_path / "state", "restarted") as cluster:
        cluster.register_application("kept", "doubles", "-1", 1_000_000)
        python_deployer.deploy_python_closure(cluster, "kept-model", 1, "doubles", constant(1.0))
        python_deployer.deploy_python_closure(cluster, "kept-model", 2, "doubles", constant(2.0))
        cluster.link_model_to_app("kept", "kept-model")
        cluster.set_model_version("kept-model", 1)
        cluster.register_application("empty", "strings", "nothing", 100_000)
        server_pid = cluster.cm.pid
        assert server_pid is not None
        workers = admin_replica_pids(cluster)
        assert len(workers) == 2

        cluster.stop_all()
        assert not cluster.connected
        wait_pids_exit([server_pid, *workers], 15, "the stopped cluster's processes")
        with pytest.raises(UnconnectedException):
            cluster.get_all_apps()

        cluster.start_clipper()
        assert sorted(cluster.get_all_apps()) == ["empty", "kept"]
        assert sorted(cluster.get_all_models()) == ["kept-model:1", "kept-model:2"]
        assert cluster.get_linked_models("kept") == ["kept-model"]
        assert cluster.get_current_model_version("kept-model") == "1"
        reply = wait_until(
            lambda: answers(cluster, "kept", {"input": [0.0]}), 20, "the restored replicas"
        )
        assert reply["output"] == 1.0

        restarted_workers = admin_replica_pids(cluster)
        cluster.stop_all_model_containers()
        assert cluster.get_all_models() == []
        wait_pids_exit(restarted_workers, 15, "a stopped replica")
        assert predict(cluster, "kept", {"input": [0.0]})["default_explanation"] == NO_MODELS
        assert sorted(cluster.get_all_apps()) == ["empty", "kept"]
