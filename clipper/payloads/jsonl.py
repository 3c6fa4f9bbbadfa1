"""The embedded default sink: one JSON record a line in `<state_dir>/payloads/<app>.jsonl`
(a model version's log: `<state_dir>/payloads/models/<name>/<version>.jsonl`),
rotated by size as the server's logs are: past `payload_log_max_bytes` the file becomes
`<app>.jsonl.1` (the older copies shift up, `payload_log_backups` kept) and a new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

from clipper.core.outputs import dumps_outputs
from clipper.payloads.sinks import SinkSettings

__all__ = ["JsonlSink", "rotate_file"]


class JsonlSink:
    """Appends records to per-log JSONL files; the file work runs in a thread, one at a
    time (a lock: a write abandoned by its timeout may still be running)."""

    kind = "jsonl"

    def __init__(self, settings: SinkSettings) -> None:
        self._dir = settings.payloads_dir
        self._max_bytes = settings.max_bytes
        self._backups = settings.backups
        self._lock = threading.Lock()

    async def write(self, log: str, records: list[dict[str, Any]]) -> None:
        """Encode the records (here) and append them to the log's file (in a thread)."""
        data = b"".join(dumps_outputs(record) + b"\n" for record in records)
        await asyncio.to_thread(self._append, self._dir / f"{log}.jsonl", data)

    async def aclose(self) -> None:
        """Nothing stays open between writes."""

    def _append(self, path: Path, data: bytes) -> None:
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                if size and size + len(data) > self._max_bytes:
                    rotate_file(path, self._backups)
            with path.open("ab") as file:
                file.write(data)


def rotate_file(path: Path, backups: int) -> None:
    """Shift `path.1 .. path.(backups-1)` up by one, `path` to `path.1` (none kept with
    `backups` 0: the file is removed)."""
    if backups <= 0:
        path.unlink(missing_ok=True)
        return
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))
