"""clipper_admin as a Clipper 0.4.1 program uses it, against a real server (issue 21,
items 2-4): `LocalContainerManager()` takes its addresses from `CLIPPER_*` unless given
arguments; a failed connect says where it dialled and why there; lookups of names that do
not exist answer "not found" whatever their spelling; `inspect_instance()` has the server's
metric families from the first second."""

from __future__ import annotations

import pytest

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from tests.integration.cluster import ServerFactory, ServerHandle, free_port


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    return module_server("facade-env")


@pytest.fixture
def env_points_at(server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> ServerHandle:
    """The environment of a shell in which the user exported the cluster's settings."""
    monkeypatch.setenv("CLIPPER_CLUSTER_NAME", server.cluster_name)
    monkeypatch.setenv("CLIPPER_STATE_DIR", str(server.state_dir))
    monkeypatch.setenv("CLIPPER_QUERY_PORT", str(server.query_port))
    monkeypatch.setenv("CLIPPER_ADMIN_PORT", str(server.admin_port))
    monkeypatch.setenv("CLIPPER_RPC_PORT", str(server.rpc_port))
    monkeypatch.setenv("CLIPPER_GRPC_PORT", str(server.grpc_port))
    return server


def connected() -> ClipperConnection:
    conn = ClipperConnection(LocalContainerManager())
    conn.connect()
    return conn


def test_the_manager_takes_its_addresses_from_the_environment(env_points_at: ServerHandle) -> None:
    conn = connected()

    assert conn.get_admin_addr() == f"127.0.0.1:{env_points_at.admin_port}"
    assert conn.get_query_addr() == f"127.0.0.1:{env_points_at.query_port}"
    assert conn.cm.settings.grpc_port == env_points_at.grpc_port
    conn.close()


def test_an_argument_wins_over_the_environment(env_points_at: ServerHandle) -> None:
    unused = free_port()
    manager = LocalContainerManager(clipper_management_port=unused, clipper_grpc_port=9)

    with pytest.raises(ClipperException) as refused:
        ClipperConnection(manager).connect()

    message = str(refused.value)
    assert f"127.0.0.1:{unused}" in message
    assert "port from an argument of LocalContainerManager" in message
    assert "clipper start" in message
    assert manager.settings.query_port == env_points_at.query_port  # not given: environment
    assert manager.settings.grpc_port == 9


def test_a_failed_connect_names_the_variable_the_address_came_from(
    env_points_at: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPPER_ADMIN_PORT", str(free_port()))

    with pytest.raises(ClipperException, match=r"port from \$CLIPPER_ADMIN_PORT"):
        ClipperConnection(LocalContainerManager()).connect()


@pytest.mark.parametrize("name", ["fake_app", "Fake-App", "no such app", "x" * 300])
def test_looking_up_a_name_that_does_not_exist_is_not_found(
    env_points_at: ServerHandle, name: str
) -> None:
    conn = connected()

    assert conn.get_app_info(name) is None
    assert conn.get_model_info(name, 1) is None
    with pytest.raises(ClipperException, match="No model with name"):
        conn.get_current_model_version(name)
    conn.close()


def test_linking_a_model_that_does_not_exist_says_so(env_points_at: ServerHandle) -> None:
    conn = connected()
    conn.register_application("lookups", "doubles", "-1", 100_000)

    with pytest.raises(ClipperException, match="No model with name 'no_such_model'"):
        conn.link_model_to_app("lookups", "no_such_model")
    conn.close()


def test_creating_keeps_the_name_rules(env_points_at: ServerHandle) -> None:
    conn = connected()

    with pytest.raises(ClipperException, match="Invalid name"):
        conn.register_application("bad_name", "doubles", "-1", 100_000)
    conn.close()


def test_inspect_instance_on_a_fresh_server_has_the_metric_families(
    configured_server: ServerFactory,
) -> None:
    fresh = configured_server("fresh-metrics")
    manager = LocalContainerManager(
        fresh.cluster_name, fresh.query_port, fresh.admin_port, fresh.rpc_port, fresh.state_dir
    )
    conn = ClipperConnection(manager)
    conn.connect()

    metrics = conn.inspect_instance()

    assert metrics["clipper_app_requests"] == 0
    assert "clipper_app_request_latency_seconds" in metrics
    assert "clipper_model_batch_size" in metrics
    conn.close()
