"""Buffers for large reads: memory that is not zero-filled before the kernel overwrites it.

`bytearray(size)` zero-fills its memory, which a read is about to overwrite whole: for an
8 MB tensor that is a memset of about 1.5 ms on this kind of machine, on the hot path of
every large request and reply. numpy's `empty` takes the memory as malloc returns it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["receive_buffer"]


def receive_buffer(size: int) -> memoryview:
    """`size` writable bytes (format "B") with undefined contents, to receive into."""
    return np.empty(size, np.uint8).data
