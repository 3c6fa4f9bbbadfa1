"""Steady client load (for benchmarks.rollout and the rollout tests): threads sending
distinct inputs (so the prediction cache never answers), counting every answer that is not
a model's."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

__all__ = ["SteadyLoad"]


class SteadyLoad:
    """`threads` clients querying `app` at `query_url` until the block ends; `failures` holds every
    client-visible failure (an error status, or a default answer), `outputs` counts the
    outputs seen. With `reward`, each answer gets feedback (`POST /<app>/update` by its
    query_id) with the reward `reward(output)`; `feedback_failures` holds those refused."""

    def __init__(
        self,
        query_url: str,
        app: str,
        threads: int = 6,
        pause_s: float = 0.0,
        reward: Callable[[Any], float] | None = None,
    ) -> None:
        """`pause_s` between a client's answer and its next query (0: none)."""
        self._url = f"{query_url}/{app}/predict"
        self._update_url = f"{query_url}/{app}/update"
        self._reward = reward
        self.feedback_failures: list[Any] = []
        self.rewarded = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._stop = threading.Event()
        self._pause_s = pause_s
        self._inputs = itertools.count(1)
        self._lock = threading.Lock()
        self.failures: list[Any] = []
        self.outputs: Counter[Any] = Counter()
        self.answered = 0

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                value = float(next(self._inputs))
                try:
                    response = client.post(self._url, json={"input": [value]})
                    reply = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    self._failed(f"{value}: {exc!r}")
                    continue
                if response.status_code != 200 or reply.get("default"):
                    self._failed(f"{value}: {response.status_code} {reply}")
                    continue
                with self._lock:
                    self.answered += 1
                    self.outputs[reply["output"]] += 1
                if self._reward is not None:
                    self._give_feedback(client, reply, self._reward)
                if self._pause_s:
                    self._stop.wait(self._pause_s)

    def _failed(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)

    def _give_feedback(
        self, client: httpx.Client, reply: dict[str, Any], reward: Callable[[Any], float]
    ) -> None:
        body = {"query_id": reply["query_id"], "reward": reward(reply["output"])}
        try:
            response = client.post(self._update_url, json=body)
            refused = None if response.status_code == 200 else response.text
        except httpx.HTTPError as exc:
            refused = repr(exc)
        with self._lock:
            if refused is None:
                self.rewarded += 1
            else:
                self.feedback_failures.append(refused)
