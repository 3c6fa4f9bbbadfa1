"""Authentication on a real server: the admin token, query tokens scoped to apps, rotation.

Admin calls without the admin token get 401 and change nothing; with it they work; a
query token opens only the apps it is scoped to and never the admin API; tokens never
reach the server's logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from clipper.client import AdminClient, QueryClient
from clipper.core.config import Settings
from clipper.core.exceptions import Forbidden, Unauthorized
from clipper.security import read_admin_token
from tests.integration.cluster import (
    ServerFactory,
    ServerHandle,
    deploy,
    free_port,
    metric,
)

pytestmark = pytest.mark.integration

ADD_APP = {"name": "intruder", "input_type": "doubles", "default_output": "0",
           "latency_slo_micros": 100_000}  # fmt: skip


def total(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def secured(module_server: ServerFactory) -> ServerHandle:
    """A server with `open` (no token needed) and `locked` (require_query_token)."""
    handle = module_server("auth")
    deploy(handle, "open", total)
    deploy(handle, "locked", total)
    flag = {"app_name": "locked", "require_query_token": True}
    handle.admin_http("set_app_query_auth", flag).raise_for_status()
    return handle


def settings_of(server: ServerHandle, **overrides: Any) -> Settings:
    return Settings(
        cluster_name=server.cluster_name, state_dir=server.state_dir,
        query_port=server.query_port, admin_port=server.admin_port, **overrides,
    )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query_token(server: ServerHandle, *apps: str) -> str:
    reply = server.admin_http("create_query_token", {"apps": list(apps), "label": "test"})
    reply.raise_for_status()
    return str(reply.json()["token"])


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {
        "error": "Unauthorized",
        "cause": response.json()["cause"],
        "code": "Unauthorized",
    }
    assert response.json()["error"] == "Unauthorized"


# -- the admin API -------------------------------------------------------------------------

UNAUTHENTICATED = [
    ("POST", "/admin/add_app", ADD_APP),
    ("POST", "/admin/delete_app", {"name": "open"}),
    ("POST", "/admin/set_num_replicas", {"model_name": "open", "num_replicas": 0}),
    ("POST", "/admin/create_query_token", {"apps": ["locked"]}),
    ("POST", "/admin/set_app_query_auth", {"app_name": "locked", "require_query_token": False}),
    ("POST", "/admin/get_all_applications", {}),
    ("POST", "/admin/shutdown", {}),
    ("PUT", "/admin/artifacts/intruder/1", None),
    ("GET", "/admin/status", None),
    ("GET", "/admin/metrics", None),
]


@pytest.mark.parametrize(("method", "path", "body"), UNAUTHENTICATED)
@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "Basic YTpi"}])
def test_admin_calls_without_the_token_get_401_and_change_nothing(
    secured: ServerHandle,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    before = secured.admin.get_all_applications(verbose=True)
    content = b"junk" if body is None else None

    response = httpx.request(
        method, f"{secured.admin_url}{path}", json=body, content=content, headers=headers,
        timeout=30,
    )  # fmt: skip

    assert_unauthorized(response)
    assert secured.admin.get_all_applications(verbose=True) == before
    assert secured.admin.get_num_replicas("open") == 1
    assert not (secured.state_dir / "models" / "intruder").exists()


def test_with_the_token_the_python_client_works(secured: ServerHandle) -> None:
    with AdminClient.from_settings(settings_of(secured)) as admin:
        assert admin.get_application("open") is not None
        assert admin.status()["cluster_name"] == "auth"


def test_the_python_client_turns_the_cache_off_and_on(secured: ServerHandle) -> None:
    deploy(secured, "cached", total)
    hits = {"model": "cached", "version": "1"}

    def two_queries_hits() -> float:
        before = metric(secured, "clipper_model_cache_hits_total", **hits)
        with httpx.Client(timeout=30) as client:  # one connection: one frontend's cache
            for _ in range(2):
                reply = client.post(f"{secured.query_url}/cached/predict", json={"input": [4, 5]})
                assert reply.json()["output"] == 9.0
        return metric(secured, "clipper_model_cache_hits_total", **hits) - before

    with AdminClient.from_settings(settings_of(secured)) as admin:
        assert admin.set_cache(False, app_name="cached")["enabled"] is False
        assert two_queries_hits() == 0
        admin.set_cache(True, app_name="cached")
        assert two_queries_hits() == 1


def test_a_wrong_client_token_is_refused_by_the_client(secured: ServerHandle) -> None:
    settings = settings_of(secured, admin_token="not-it")
    with AdminClient.from_settings(settings) as admin, pytest.raises(Unauthorized):
        admin.get_all_applications()


def test_public_admin_paths_need_no_token(secured: ServerHandle) -> None:
    assert httpx.get(f"{secured.admin_url}/admin/ping", timeout=10).text == "PONG"
    assert httpx.get(f"{secured.admin_url}/openapi.json", timeout=10).status_code == 200


def test_a_query_token_cannot_call_the_admin_api(secured: ServerHandle) -> None:
    token = query_token(secured, "locked")

    response = httpx.post(
        f"{secured.admin_url}/admin/add_app", json=ADD_APP, headers=bearer(token), timeout=30
    )

    assert_unauthorized(response)
    assert secured.admin.get_application("intruder") is None


def test_app_info_shows_the_query_token_flag(secured: ServerHandle) -> None:
    apps = secured.admin.get_all_applications(verbose=True)

    flags = {app["name"]: app["require_query_token"] for app in apps}
    assert flags["locked"] is True
    assert flags["open"] is False


# -- query tokens ----------------------------------------------------------------------------


def test_an_open_app_answers_without_a_token(secured: ServerHandle) -> None:
    reply = secured.predict("open", {"input": [1.0, 2.0]})

    assert reply.status_code == 200
    assert reply.json()["output"] == 3.0


def test_a_locked_app_needs_a_token_scoped_to_it(secured: ServerHandle) -> None:
    scoped, other = query_token(secured, "locked"), query_token(secured, "open")
    admin_token = read_admin_token(secured.state_dir)
    assert admin_token is not None

    assert_unauthorized(secured.predict("locked", {"input": [1.0]}))
    assert_unauthorized(secured.predict("locked", {"input": [1.0]}, headers=bearer("nope")))
    assert_unauthorized(secured.predict("locked", {"input": [1.0]}, headers=bearer(admin_token)))
    forbidden = secured.predict("locked", {"input": [1.0]}, headers=bearer(other))
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "Forbidden")
    reply = secured.predict("locked", {"input": [1.0, 2.0]}, headers=bearer(scoped))
    assert (reply.status_code, reply.json()["output"]) == (200, 3.0)


def test_feedback_to_a_locked_app_needs_the_token(secured: ServerHandle) -> None:
    token = query_token(secured, "locked")
    url = f"{secured.query_url}/locked/update"
    body = {"uid": 1, "input": [1.0], "label": 1.0}

    assert_unauthorized(httpx.post(url, json=body, timeout=30))
    assert httpx.post(url, json=body, headers=bearer(token), timeout=30).status_code == 200


@pytest.mark.parametrize("name", ["locked", "locked/versions/1", "/locked//versions/1/"])
def test_v2_inference_on_a_locked_app_or_its_model_needs_the_token(
    secured: ServerHandle, name: str
) -> None:
    token = query_token(secured, "locked")
    url = f"{secured.query_url}/v2/models/{name}/infer"
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}

    denied = httpx.post(url, json=body, timeout=30)
    allowed = httpx.post(url, json=body, headers=bearer(token), timeout=30)

    assert denied.status_code == 401
    assert denied.headers["www-authenticate"].startswith("Bearer")
    assert set(denied.json()) == {"error", "cause", "code"}  # the protocol's `error`, and ours
    assert denied.json()["code"] == "Unauthorized"
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("name", ["locked", "open"])
def test_grpc_inference_checks_the_same_query_tokens(secured: ServerHandle, name: str) -> None:
    scoped, other = query_token(secured, "locked"), query_token(secured, "open")
    tensor = grpcclient.InferInput("input", [1, 2], "FP64")
    tensor.set_data_from_numpy(np.array([[1.0, 2.0]]))
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{secured.grpc_port}")

    def infer(token: str | None) -> float:
        headers = None if token is None else {"authorization": f"Bearer {token}"}
        result = client.infer(name, [tensor], headers=headers, client_timeout=30)
        return float(result.as_numpy("output")[0])

    try:
        assert infer(scoped) == 3.0
        if name == "open":
            assert infer(None) == infer(other) == 3.0
            return
        for token, status in [(None, "UNAUTHENTICATED"), ("nope", "UNAUTHENTICATED"),
                              (other, "PERMISSION_DENIED")]:  # fmt: skip
            with pytest.raises(InferenceServerException) as denied:
                infer(token)
            assert denied.value.status() == f"StatusCode.{status}"
            if token is not None:
                assert token not in str(denied.value.message())
    finally:
        client.close()


def test_the_query_client_sends_its_token(secured: ServerHandle) -> None:
    token = query_token(secured, "locked")
    settings = settings_of(secured)

    with QueryClient.from_settings(settings, token=token) as client:
        assert client.predict("locked", [2.0, 2.0])["output"] == 4.0
    with QueryClient.from_settings(settings) as client, pytest.raises(Unauthorized):
        client.predict("locked", [2.0, 2.0])
    other = query_token(secured, "open")
    with QueryClient.from_settings(settings, token=other) as client, pytest.raises(Forbidden):
        client.predict("locked", [2.0, 2.0])


def test_a_revoked_token_stops_working_at_once(secured: ServerHandle) -> None:
    created = secured.admin_http("create_query_token", {"apps": ["locked"]}).json()
    headers = bearer(created["token"])
    assert secured.predict("locked", {"input": [1.0]}, headers=headers).status_code == 200

    secured.admin_http("revoke_query_token", {"id": created["id"]}).raise_for_status()

    assert_unauthorized(secured.predict("locked", {"input": [1.0]}, headers=headers))
    listed = secured.admin_http("get_query_tokens").json()
    assert created["id"] not in [token["id"] for token in listed]
    assert all("token" not in token for token in listed)


def test_a_token_of_a_deleted_app_does_not_open_a_new_app_of_its_name(
    secured: ServerHandle,
) -> None:
    """Issue 28, item 15: a token is scoped to an app, not to whatever later takes its name."""
    body = {**ADD_APP, "name": "reborn", "require_query_token": True}
    secured.admin_http("add_app", body).raise_for_status()
    deploy(secured, "reborn", total)
    old = secured.admin_http("create_query_token", {"apps": ["reborn", "locked"]}).json()
    only_old = secured.admin_http("create_query_token", {"apps": ["reborn"]}).json()
    assert secured.predict("reborn", {"input": [1.0]}, headers=bearer(old["token"])).json()

    secured.admin_http("delete_app", {"name": "reborn"}).raise_for_status()
    secured.admin_http("add_app", body).raise_for_status()
    secured.admin_http("add_model_links", {"app_name": "reborn", "model_names": ["reborn"]})

    refused = secured.predict("reborn", {"input": [1.0]}, headers=bearer(old["token"]))
    assert (refused.status_code, refused.json()["code"]) == (403, "Forbidden")  # not scoped now
    assert_unauthorized(  # a token left with no app is gone
        secured.predict("reborn", {"input": [1.0]}, headers=bearer(only_old["token"]))
    )
    listed = {token["id"]: token["apps"] for token in secured.admin_http("get_query_tokens").json()}
    assert listed[old["id"]] == ["locked"]  # still good for the app it was also scoped to
    assert only_old["id"] not in listed  # scoped to nothing any more: gone


def test_the_flag_is_set_at_add_app_and_turned_off_later(secured: ServerHandle) -> None:
    body = {**ADD_APP, "name": "flagged", "require_query_token": True}
    secured.admin_http("add_app", body).raise_for_status()  # AdminClient.add_app: no such flag
    assert_unauthorized(secured.predict("flagged", {"input": [1.0]}))

    flag = {"app_name": "flagged", "require_query_token": False}
    secured.admin_http("set_app_query_auth", flag).raise_for_status()

    assert secured.predict("flagged", {"input": [1.0]}).status_code == 200


def test_tokens_never_reach_the_logs(secured: ServerHandle) -> None:
    token = query_token(secured, "locked")
    secured.predict("locked", {"input": [1.0]}, headers=bearer(token))
    secured.predict("locked", {"input": [1.0]}, headers=bearer("wrong-guess-token"))
    admin_token = read_admin_token(secured.state_dir)
    assert admin_token is not None

    logs = [*(secured.state_dir / "logs").glob("*.log*"), *secured.state_dir.parent.glob("*.out")]
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    assert logs
    for secret in (admin_token, token, "wrong-guess-token"):
        assert secret not in text


# -- rotation, the CLI and the settings -----------------------------------------------------


def clipper_cli(server: ServerHandle, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "clipper.cli", *args, *server.cli_flags()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          env={**_base_env(), **env})  # fmt: skip


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "CLIPPER_ADMIN_TOKEN"}


def test_token_rotation_takes_effect_at_once(server: ServerHandle) -> None:
    old = read_admin_token(server.state_dir)
    assert clipper_cli(server, "apps").returncode == 0

    rotated = clipper_cli(server, "token", "rotate")

    new = read_admin_token(server.state_dir)
    assert rotated.returncode == 0, rotated.stderr
    assert old is not None
    assert new not in (None, old)
    assert (server.state_dir / "admin_token").stat().st_mode & 0o777 == 0o600
    assert clipper_cli(server, "token", "show").stdout.strip() == new
    url = f"{server.admin_url}/admin/get_all_applications"
    assert_unauthorized(httpx.post(url, json={}, headers=bearer(old), timeout=10))
    assert httpx.post(url, json={}, headers=bearer(new), timeout=10).status_code == 200
    assert clipper_cli(server, "apps").returncode == 0  # the CLI reads the new file


def test_the_environment_token_overrides_the_file(server: ServerHandle) -> None:
    refused = clipper_cli(server, "apps", CLIPPER_ADMIN_TOKEN="not-the-token")
    token = read_admin_token(server.state_dir)
    assert token is not None

    accepted = clipper_cli(server, "apps", CLIPPER_ADMIN_TOKEN=token)

    assert refused.returncode == 1
    assert "error:" in refused.stderr
    assert "not-the-token" not in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_a_public_bind_without_admin_auth_is_refused(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "clipper.cli", "start", "--host", "0.0.0.0",
        "--state-dir", str(tmp_path / "state"), "--query-port", str(free_port()),
        "--admin-port", str(free_port()), "--rpc-port", str(free_port()),
        "--grpc-port", str(free_port()),
    ]  # fmt: skip

    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                            env={**_base_env(), "CLIPPER_ADMIN_AUTH": "false"})  # fmt: skip

    assert result.returncode == 1
    assert "refusing to bind 0.0.0.0" in result.stderr


def test_admin_auth_off_on_loopback_needs_no_token(configured_server: ServerFactory) -> None:
    handle = configured_server("open-admin", admin_auth=False)

    response = httpx.post(f"{handle.admin_url}/admin/get_all_applications", json={}, timeout=30)

    assert response.status_code == 200
    assert read_admin_token(handle.state_dir) is None
