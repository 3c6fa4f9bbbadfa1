"""A server killed (`kill -9`) in the middle of a deploy (issue 28, item 5): the next server
on the same state directory rolls the unfinished deploy back, so the same deploy runs again
and its version becomes current; killed between the upload and the registration, the same.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import httpx

from clipper.artifacts.python import closure_artifact
from tests.integration.cluster import ServerFactory, ServerHandle, deploy, wait_until

GIVE_UP_S = 30.0


class SlowToLoad:
    """Unpickling it sleeps: a replica whose model takes long to load."""

    def __reduce__(self) -> tuple[Any, tuple[float]]:
        return (time.sleep, (60.0,))


_SLOW = SlowToLoad()


def slow_model(xs: list[Any], _delay: Any = _SLOW) -> list[float]:
    return [0.0 for _ in xs]


def answer_two(xs: list[Any]) -> list[float]:
    return [2.0 for _ in xs]


def upload(server: ServerHandle, name: str, version: str, func: Any) -> None:
    httpx.put(
        f"{server.admin_url}/admin/artifacts/{name}/{version}", content=closure_artifact(func),
        headers=server.admin_headers(), timeout=60,
    ).raise_for_status()  # fmt: skip


def start_deploy_in_background(server: ServerHandle, name: str) -> threading.Thread:
    """`add_model` of version 1 (it waits for the replica, which takes a minute to load)."""
    body = {"model_name": name, "model_version": "1", "input_type": "doubles", "num_replicas": 1}
    thread = threading.Thread(
        target=lambda: _ignore_errors(lambda: server.admin_http("add_model", body)), daemon=True
    )
    thread.start()
    return thread


def _ignore_errors(call: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed while it waits
        call()


def test_a_deploy_cut_short_is_rolled_back_and_runs_again(configured_server: ServerFactory) -> None:
    server = configured_server("mid-deploy")
    server.admin.add_app("m", "doubles", "-1", 1_000_000)
    upload(server, "m", "1", slow_model)
    deploying = start_deploy_in_background(server, "m")
    wait_until(lambda: server.admin.get_model("m", "1"), GIVE_UP_S, "the version registered")
    server.kill()
    deploying.join(GIVE_UP_S)

    again = configured_server.restart(server)

    assert again.admin.get_all_models() == []
    kinds = [event["kind"] for event in again.admin.get_events()]
    assert "deploy_rolled_back" in kinds
    deploy(again, "m", answer_two)  # the same version again: no 409
    assert again.admin.get_current_model_version("m") == "1"
    assert again.predict("m", {"input": [1.0]}).json()["output"] == 2.0


def test_a_server_killed_between_upload_and_registration_deploys_again(
    configured_server: ServerFactory,
) -> None:
    server = configured_server("after-upload")
    upload(server, "m", "1", slow_model)
    server.kill()

    again = configured_server.restart(server)

    deploy(again, "m", answer_two)
    assert again.predict("m", {"input": [1.0]}).json()["output"] == 2.0
