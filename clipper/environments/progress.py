"""Showing environment builds while a deploy waits: a thread that polls the admin API's
event log and reports the events of one model's environment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

__all__ = ["BuildProgressWatcher", "describe_event"]

POLL_INTERVAL_S = 0.25

FetchEvents = Callable[[int], list[dict[str, Any]]]
"""Events after a sequence number, oldest first (`AdminClient.get_events`)."""


def describe_event(kind: str, detail: Mapping[str, Any]) -> str | None:
    """One readable line for an environment event, or None for other events."""
    key = detail.get("environment")
    if kind == "environment_resolved":
        state = detail.get("state")
        if state == "server":
            return "environment: the server's interpreter satisfies it"
        if state == "ready":
            return f"environment {key}: already built (cached)"
        return f"environment {key}: needs building"
    if kind == "environment_build_started":
        count = len(detail.get("requirements") or [])
        return (f"environment {key}: building a Python {detail.get('python')} venv with "
                f"{detail.get('installer')} ({count} requirements)")  # fmt: skip
    if kind == "environment_build_progress":
        return f"environment {key}: {detail.get('message')}"
    if kind == "environment_build_finished":
        return f"environment {key}: built in {detail.get('seconds')} s"
    if kind == "environment_build_failed":
        first_line = str(detail.get("error", "")).splitlines()[:1]
        return f"environment {key}: build failed: {''.join(first_line)}"
    return None


class BuildProgressWatcher:
    """While open, reports the environment events of `model` (and of the environment it
    resolved to) through `report`, polling every POLL_INTERVAL_S from event `since`."""

    def __init__(
        self, fetch: FetchEvents, model: str, since: int, report: Callable[[str], None]
    ) -> None:
        self._fetch = fetch
        self._model = model
        self._seq = since
        self._report = report
        self._keys: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clipper-progress", daemon=True)

    def __enter__(self) -> BuildProgressWatcher:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # what arrived since the last poll

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            self._poll()

    def _poll(self) -> None:
        try:
            events = self._fetch(self._seq)
        except Exception:  # progress is best effort; the deploy call reports failures
            return
        for event in events:
            self._seq = max(self._seq, int(event.get("seq", 0)))
            self._consider(str(event.get("kind", "")), event.get("detail") or {})

    def _consider(self, kind: str, detail: Mapping[str, Any]) -> None:
        key = detail.get("environment")
        if detail.get("model") == self._model and isinstance(key, str):
            self._keys.add(key)
        elif key not in self._keys:
            return
        line = describe_event(kind, detail)
        if line is not None:
            self._report(line)
