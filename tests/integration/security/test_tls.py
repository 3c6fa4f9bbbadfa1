"""TLS on both HTTP ports, end to end: a self-signed certificate made for the test, the Python
clients and `curl --cacert`."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from clipper.client import AdminClient, QueryClient
from clipper.core.config import Settings
from clipper.security import read_admin_token
from tests.integration.cluster import ServerFactory, ServerHandle, deploy

pytestmark = pytest.mark.integration

CURL = shutil.which("curl")


def total(xs: list[Any]) -> list[float]:
    return [float(sum(x)) for x in xs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    handle = module_server("tls", tls=True)
    deploy(handle, "sum", total)
    return handle


def client_settings(server: ServerHandle) -> Settings:
    return Settings(
        state_dir=server.state_dir, query_port=server.query_port, admin_port=server.admin_port,
        tls_cert_file=server.ca_file,
    )  # fmt: skip


def test_the_python_clients_speak_tls(server: ServerHandle) -> None:
    settings = client_settings(server)

    with AdminClient.from_settings(settings) as admin:
        assert admin.base_url.startswith("https://")
        assert admin.get_linked_models("sum") == ["sum"]
    with QueryClient.from_settings(settings) as query:
        assert query.predict("sum", [1.0, 2.5])["output"] == 3.5


def test_the_v2_protocol_runs_over_tls(server: ServerHandle) -> None:
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}

    reply = httpx.post(
        f"{server.query_url}/v2/models/sum/infer", json=body, verify=server.verify, timeout=30
    )

    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [3.0]


def test_grpc_runs_over_tls_with_the_same_certificate(server: ServerHandle) -> None:
    assert server.ca_file is not None
    target = f"localhost:{server.grpc_port}"
    client = grpcclient.InferenceServerClient(
        target, ssl=True, root_certificates=str(server.ca_file)
    )
    tensor = grpcclient.InferInput("input", [1, 2], "FP64")
    tensor.set_data_from_numpy(np.array([[1.0, 2.5]]))
    try:
        assert client.is_server_live()
        assert client.infer("sum", [tensor]).as_numpy("output").tolist() == [3.5]
    finally:
        client.close()
    plain = grpc.insecure_channel(target)  # plain text on the TLS port: no answer
    with plain, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(plain).result(timeout=3)


def test_a_client_without_the_ca_refuses_the_server(server: ServerHandle) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.query_url}/healthz", timeout=10)


def test_plain_http_on_a_tls_port_gets_no_answer(server: ServerHandle) -> None:
    for port in (server.query_port, server.admin_port):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()


def curl(server: ServerHandle, *args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    command = [CURL, "--silent", "--show-error", "--max-time", "20", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.skipif(CURL is None, reason="needs the curl binary")
def test_curl_queries_and_manages_over_tls(server: ServerHandle) -> None:
    token = read_admin_token(server.state_dir)
    ca = str(server.ca_file)

    predicted = curl(server, "--cacert", ca, "-H", "Content-Type: application/json",
                     "-d", '{"input": [2.0, 3.0]}', f"{server.query_url}/sum/predict")  # fmt: skip
    listed = curl(server, "--cacert", ca, "-H", f"Authorization: Bearer {token}",
                  "-d", "{}", f"{server.admin_url}/admin/get_all_applications")  # fmt: skip
    refused = curl(server, f"{server.query_url}/healthz")  # no --cacert: not trusted

    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["output"] == 5.0
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == ["sum"]
    assert refused.returncode == 60  # curl: peer certificate cannot be authenticated


def test_the_uvicorn_query_server_serves_tls_too(configured_server: ServerFactory) -> None:
    server = configured_server("tls-uvicorn", tls=True, query_http="uvicorn")  # ready over https

    reply = httpx.get(f"{server.query_url}/healthz", verify=server.verify, timeout=10)

    assert reply.json() == {"status": "live"}
