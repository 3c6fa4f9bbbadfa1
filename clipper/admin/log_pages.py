"""The logs of a cluster, read a page at a time (`POST /admin/get_logs`).

A reply holds at most `max_bytes` of log text in all, however large the logs are: each log
is an entry `{name, size, offset, next_offset, content}`, `content` being its bytes from
`offset` up to `next_offset`, cut at a whole UTF-8 character. A client reads a log whole
by asking again from `next_offset` until it reaches `size`, and follows it by remembering
`next_offset` (a log found shorter than that was rotated: read it again from 0).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from clipper.core.exceptions import InvalidRequest, NotFound

__all__ = ["DEFAULT_PAGE_BYTES", "MAX_PAGE_BYTES", "read_log_pages"]

DEFAULT_PAGE_BYTES = 1 << 20
MAX_PAGE_BYTES = 16 << 20
_MIN_PAGE_BYTES = 4  # the longest UTF-8 character


def read_log_pages(logs_dir: Path, name: str | None, offset: int, max_bytes: int) -> dict[str, Any]:
    """One page: of the log `name` from `offset`, or of every log (each from `offset`,
    in name order, until `max_bytes` are used; the others' content is empty)."""
    if offset < 0:
        raise InvalidRequest("offset must be at least 0")
    if not _MIN_PAGE_BYTES <= max_bytes <= MAX_PAGE_BYTES:  # a page of one log always advances
        raise InvalidRequest(f"max_bytes must be between {_MIN_PAGE_BYTES} and {MAX_PAGE_BYTES}")
    files = sorted(logs_dir.glob("*.log")) if logs_dir.is_dir() else []
    if name is not None:
        files = [path for path in files if path.name == name]
        if not files:
            raise NotFound(f"No log named {name!r}")
    entries = []
    budget = max_bytes
    for path in files:
        entry = _read_page(path, offset, budget)
        budget -= entry["next_offset"] - entry["offset"]
        entries.append(entry)
    return {"logs": entries}


def _read_page(path: Path, offset: int, max_bytes: int) -> dict[str, Any]:
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = min(offset, size)
        file.seek(start)
        chunk = file.read(max_bytes) if max_bytes > 0 else b""
    at_end = start + len(chunk) >= size
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    content = decoder.decode(chunk, final=at_end)
    held_back = len(decoder.getstate()[0])  # the start of a character cut by the page's end
    return {
        "name": path.name,
        "size": size,
        "offset": start,
        "next_offset": start + len(chunk) - held_back,
        "content": content,
    }
