"""Models and a module-wide server for the Open Inference Protocol integration tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cluster import ServerFactory, ServerHandle, deploy

MULTI_SIGNATURE = {
    "inputs": [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "b", "datatype": "INT64", "shape": [-1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
    ],
    "outputs": [
        {"name": "total", "datatype": "FP32", "shape": [-1]},
        {"name": "doubled", "datatype": "INT64", "shape": [-1]},
        {"name": "upper", "datatype": "BYTES", "shape": [-1]},
    ],
}


def row_sums(inputs: list[Any]) -> list[float]:
    """doubles: the sum of each row."""
    return [float(x.sum()) for x in inputs]


def doubled(inputs: list[Any]) -> list[Any]:
    """floats: each row times two (numpy arrays)."""
    return [x * 2 for x in inputs]


def shout(inputs: list[str]) -> list[str]:
    """strings: upper case."""
    return [text.upper() for text in inputs]


def multi(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tensors: three inputs, three outputs."""
    return [
        {
            "total": float(row["a"].sum()),
            "doubled": int(row["b"]) * 2,
            "upper": row["text"].item().decode().upper(),
        }
        for row in rows
    ]


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
