"""A model's exception text stays in the server log (issue 28, item 12): clients of every
query surface get the exception's type and a query id, unless the app shows model errors;
a missed SLO states the budget it missed (issue 21, item 7)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

SECRET = "customer 4711 has balance 1e6"
SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"


def leak_a_secret(inputs: list[Any]) -> list[float]:
    """A model whose exception text holds data its clients must not read."""
    raise KeyError(SECRET)


def slow(inputs: list[Any]) -> list[float]:
    time.sleep(0.4)
    return [float(sum(x)) for x in inputs]


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    server = module_server("errors")
    deploy(server, "leaky", leak_a_secret, slo_us=2_000_000)
    server.admin.add_app("chosen", "doubles", "-1", 2_000_000, policy="epsilon_greedy")
    server.admin.add_model_links("chosen", ["leaky"])
    deploy(server, "slow", slow, slo_us=100_000)
    server.admin.set_cache(False, app_name="slow")
    return server


def _v2_input(client: Any, value: float) -> Any:
    tensor = client.InferInput("input", [1, 2], "FP64")
    tensor.set_data_from_numpy(np.array([[value, 1.0]]))
    return tensor


def test_clipper_clients_of_a_plain_and_a_policy_app_get_no_text(server: ServerHandle) -> None:
    for app in ("leaky", "chosen"):
        reply = server.predict(app, {"input": [1.0, 2.0]}).json()
        assert reply["default"] is True
        explanation = reply["default_explanation"]
        assert explanation.startswith("Model error: KeyError raised by leaky:1"), explanation
        assert "customer" not in explanation
        assert "its message is in the server log" in explanation
    wait_until(lambda: SECRET in server.log_path.read_text(), 5, "the text in the server log")


def test_v2_clients_over_http_and_grpc_get_no_text(server: ServerHandle) -> None:
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    for client, module in ((http, httpclient), (grpc, grpcclient)):
        for name in ("leaky", "chosen"):  # a model, and an app under a policy
            with pytest.raises(InferenceServerException) as raised:
                client.infer(name, [_v2_input(module, float(time.time()))])
            assert "KeyError raised by leaky:1" in str(raised.value), raised.value
            assert "customer" not in str(raised.value)


def test_an_app_that_shows_model_errors_gets_the_text(server: ServerHandle) -> None:
    server.admin.set_app_model_errors("chosen", True)
    try:
        reply = server.predict("chosen", {"input": [3.0, 4.0]}).json()
        assert reply["default_explanation"] == f"Model error: KeyError: {SECRET!r}"
        assert server.admin.get_application("chosen")["show_model_errors"] is True
        plain = server.predict("leaky", {"input": [3.0, 4.0]}).json()
        assert "customer" not in plain["default_explanation"]  # another app's setting
    finally:
        server.admin.set_app_model_errors("chosen", False)
    again = server.predict("chosen", {"input": [5.0, 6.0]}).json()
    assert "customer" not in again["default_explanation"]


def test_an_app_registered_to_show_model_errors_survives_a_restart(
    module_server: ServerFactory,
) -> None:
    server = module_server("errors-restart")
    server.admin.add_app("dev", "doubles", "-1", 2_000_000, show_model_errors=True)
    deploy(server, "dev", leak_a_secret)
    server = module_server.restart(server)
    server.admin.wait_model_ready("dev", "1")
    reply = server.predict("dev", {"input": [1.0]}).json()
    assert reply["default_explanation"] == f"Model error: KeyError: {SECRET!r}"


def test_a_missed_slo_states_it_on_every_surface(server: ServerHandle) -> None:
    reply = server.predict("slow", {"input": [float(time.time())]}).json()
    assert reply["default_explanation"] == f"{SLO_MISSED} (100 ms)"
    shorter = server.predict(
        "slow", {"input": [float(time.time())]}, headers={"Clipper-Timeout-Us": "20000"}
    ).json()
    assert shorter["default_explanation"] == (
        f"{SLO_MISSED} (20 ms, the request's timeout; the SLO is 100 ms)"
    )
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.query_port}")
    with pytest.raises(InferenceServerException) as raised:
        http.infer("slow", [_v2_input(httpclient, float(time.time()))])
    assert f"{SLO_MISSED} (100 ms)" in str(raised.value)
