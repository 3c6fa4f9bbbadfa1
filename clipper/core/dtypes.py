"""The numpy dtype of each numeric input type: how the RPC, the input codec and the Open
Inference Protocol lay out numeric inputs (little-endian, whatever the host)."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipper.core.types import InputType

__all__ = ["NUMERIC_DTYPES"]

NUMERIC_DTYPES: dict[InputType, np.dtype[Any]] = {
    InputType.INTEGERS: np.dtype("<i4"),
    InputType.FLOATS: np.dtype("<f4"),
    InputType.DOUBLES: np.dtype("<f8"),
}
