"""Models the Open Inference Protocol tests deploy (see conftest.py's `v2_server`)."""

from __future__ import annotations

from typing import Any

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
