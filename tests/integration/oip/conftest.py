"""The server the Open Inference Protocol tests share, one per test module."""

from __future__ import annotations

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy
from tests.integration.oip.models import MULTI_SIGNATURE, doubled, multi, row_sums, shout


@pytest.fixture(scope="module")
def v2_server(module_server: ServerFactory) -> ServerHandle:
    """One server for a test module: models sum, twice, shout, multi and app `front`."""
    server = module_server("v2")
    deploy(server, "sum", row_sums, input_type="doubles")
    deploy(server, "twice", doubled, input_type="floats")
    deploy(server, "shout", shout, input_type="strings")
    deploy(server, "multi", multi, input_type="tensors", link=False, signature=MULTI_SIGNATURE)
    server.admin.add_app("front", "doubles", default_output="-1", latency_slo_micros=5_000_000)
    server.admin.add_model_links("front", ["sum"])
    return server
