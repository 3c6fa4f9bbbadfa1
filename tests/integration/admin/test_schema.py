"""The admin API against its served OpenAPI document: the document names every operation
the server has, and schemathesis, fuzzing each operation with the admin token (bounded in
examples, and in time by pytest-timeout), finds no 5xx, no crash and no answer the document
does not declare."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from clipper.admin.api import _HANDLERS
from clipper.admin.openapi import OPERATIONS, admin_openapi
from tests.integration.cluster import ServerFactory, ServerHandle

pytestmark = pytest.mark.integration

# Operations that stop the server or start worker processes are left out of the fuzzing:
# their inputs are covered by tests/integration/query/test_bad_input.py.
NOT_FUZZED = ["shutdown", "add_model"]
EXAMPLES_PER_OPERATION = 12


def test_the_document_names_every_admin_operation() -> None:
    document = admin_openapi()

    assert set(OPERATIONS) == set(_HANDLERS)
    for name in _HANDLERS:
        assert "post" in document["paths"][f"/admin/{name}"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_document_is_served_without_a_token(admin_server: ServerHandle) -> None:
    response = httpx.get(f"{admin_server.admin_url}/openapi.json", timeout=10)

    assert response.status_code == 200
    assert response.json() == admin_openapi()


@pytest.fixture(scope="module")
def admin_server(module_server: ServerFactory) -> ServerHandle:
    return module_server("schema")


# The served document equals this one (test above); loading it here, not from the server,
# lets schemathesis parametrize at collection (its lazy fixture loader needs pytest < 9).
schema = schemathesis.openapi.from_dict(admin_openapi()).exclude(operation_id=NOT_FUZZED)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_fuzzed_admin_requests_get_no_server_error(case: Any, admin_server: ServerHandle) -> None:
    response = case.call_and_validate(
        base_url=admin_server.admin_url,
        headers=admin_server.admin_headers(),
        # The document does not spell out every semantic rule (names that must exist, name
        # patterns, policy parameters): a schema-valid body may still be a 4xx.
        excluded_checks=[positive_data_acceptance],
        timeout=30,
    )

    assert response.status_code < 500, response.text


def test_the_server_survived_the_fuzzing(admin_server: ServerHandle) -> None:
    assert admin_server.process is not None
    assert admin_server.process.poll() is None
    assert httpx.get(f"{admin_server.admin_url}/admin/ping", timeout=10).text == "PONG"
