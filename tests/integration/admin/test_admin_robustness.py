"""The admin API under careless operators (issue 28, item 14, in part): a read-only state
directory answers the JSON error shape with a code, not plain text; names and default
outputs have length limits."""

from __future__ import annotations

import resource

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle


@pytest.fixture(scope="module")
def server(module_server: ServerFactory) -> ServerHandle:
    return module_server("careless")


def test_a_state_directory_that_takes_no_writes_answers_a_json_error(
    configured_server: ServerFactory,
) -> None:
    """As when the disk is full or the directory read-only: the server may write nothing
    (its file size limit set to one byte from outside; root ignores file modes)."""
    full = configured_server("disk-full")
    assert full.process is not None
    pid = full.process.pid
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, before[1]))
    try:
        response = full.admin_http("add_app", {
            "name": "written", "input_type": "doubles", "default_output": "-1",
            "latency_slo_micros": 100_000,
        })  # fmt: skip
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, before)

    assert response.status_code == 500
    body = response.json()
    assert (body["code"], body["error"]) == ("InternalError", "Internal error")
    assert body["cause"].startswith("add_app failed: ")
    assert full.admin.get_application("written") is None  # nothing half-written
    assert full.admin_http("get_all_applications", {}).status_code == 200  # serves on


def test_a_name_over_63_characters_is_refused(server: ServerHandle) -> None:
    response = server.admin_http("add_app", {
        "name": "a" * 64, "input_type": "doubles", "default_output": "-1",
        "latency_slo_micros": 100_000,
    })  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (400, "InvalidName")
    assert "at most 63 characters" in response.json()["cause"]


def test_a_huge_default_output_is_refused(server: ServerHandle) -> None:
    response = server.admin_http("add_app", {
        "name": "huge-default", "input_type": "doubles", "default_output": "x" * 70_000,
        "latency_slo_micros": 100_000,
    })  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (400, "InvalidRequest")
