"""The payload log: each app's tap (clipper.payloads.tap) and, per sink, a background writer.

`apply(snapshot)` keeps `taps` (the dict the query surfaces read) current in place: one tap
per app whose `payload_log` is set, apps with the same `sink` sharing one `SinkChannel`.
`run()` (supervised by the server) owns one task per channel: it waits for its `wake`
event, takes every waiting entry of its taps, renders them (on the loop, in slices, with
no I/O) and writes each app's batch, one write at a time, each bounded by
`payload_log_timeout_s`. A write that fails or times out drops its records (counted per
app and reason); meanwhile new entries queue in the taps, bounded, so a stalled sink drops
records and never blocks a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.records import RegistrySnapshot
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads.records import render_entry
from clipper.payloads.sinks import PayloadSink, SinkSettings, open_sink
from clipper.payloads.tap import AppTap

__all__ = ["PayloadLog", "SinkChannel"]

log = logging.getLogger("clipper.payloads")

RENDER_SLICE = 256
"""Entries rendered between two yields to the event loop (a few hundred microseconds)."""
FINAL_FLUSH_S = 2.0
"""How long a channel being closed (the server stopping) may take to write what is left."""


class SinkChannel:
    """One sink and the taps that write to it."""

    def __init__(self, config: PayloadLogConfig, settings: SinkSettings, metrics: ServerMetrics):
        self.config = config
        self._settings = settings
        self._metrics = metrics
        self.wake = asyncio.Event()
        self.taps: dict[str, AppTap] = {}
        self.retired: list[AppTap] = []  # taps replaced or removed, with entries to write
        self._failing = False  # logged once per run of failures

    async def run(self) -> None:
        """Write what the taps buffer until cancelled; then a last, bounded flush."""
        sink = open_sink(self.config, self._settings)
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                await self.flush(sink)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINAL_FLUSH_S):
                    await self.flush(sink)
            with contextlib.suppress(Exception):
                await sink.aclose()

    async def flush(self, sink: PayloadSink) -> None:
        """Write every entry waiting now, app by app."""
        retired, self.retired = self.retired, []
        for tap in [*retired, *self.taps.values()]:
            entries = tap.take()
            if entries:
                records = await self._render(tap, entries)
                await self._write(sink, tap.app, records)

    async def _render(self, tap: AppTap, entries: list[Any]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for start in range(0, len(entries), RENDER_SLICE):
            if start:
                await asyncio.sleep(0)  # let queries in between slices
            for entry in entries[start : start + RENDER_SLICE]:
                try:
                    records.extend(render_entry(tap.app, tap.input_type, tap.fields, entry))
                except Exception:
                    log.exception("app %s: a payload record could not be rendered", tap.app)
                    self._dropped(tap.app, "encode_error", 1)
        return records

    async def _write(self, sink: PayloadSink, app: str, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                await sink.write(app, records)
        except TimeoutError:
            self._failed(app, "sink_timeout", len(records), "timed out")
            return
        except Exception as exc:
            self._failed(app, "sink_error", len(records), f"failed: {exc!r}")
            return
        if self._failing:
            log.info("payload sink %s of app %s writes again", self.config.sink, app)
            self._failing = False
        self._metrics.payload_records.labels(app, sink.kind).value += len(records)

    def _failed(self, app: str, reason: str, count: int, what: str) -> None:
        if not self._failing:
            log.warning("payload sink %s of app %s %s; its records are dropped (counted in "
                        "clipper_payload_log_dropped_total) until it writes again",
                        self.config.sink, app, what)  # fmt: skip
            self._failing = True
        self._dropped(app, reason, count)

    def _dropped(self, app: str, reason: str, count: int) -> None:
        self._metrics.payload_dropped.labels(app, reason).value += count


class PayloadLog:
    """Every app's payload tap and the writers of their sinks (see the module docstring)."""

    def __init__(self, settings: SinkSettings, capacity: int, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.capacity = capacity
        self.metrics = metrics
        self.taps: dict[str, AppTap] = {}
        """app -> tap; changed in place only, so the query surfaces keep this very dict."""
        self._channels: dict[str, SinkChannel] = {}
        self._changed = asyncio.Event()
        metrics.watch_payload_buffers(self.depths)

    def depths(self) -> Iterator[tuple[str, int]]:
        """(app, entries waiting) for each app that logs."""
        for app, tap in list(self.taps.items()):
            yield app, len(tap.entries)

    def apply(self, snapshot: RegistrySnapshot) -> None:
        """Follow the registry: a tap for each app with a payload log, none for the others.
        A tap whose setting is unchanged stays (with what it holds)."""
        for name in [name for name in self.taps if name not in snapshot.apps]:
            self._remove(name)
        for name, app in snapshot.apps.items():
            config, tap = app.payload_log, self.taps.get(name)
            if config is None:
                if tap is not None:
                    self._remove(name)
                continue
            if tap is not None and tap.config == config and tap.input_type is app.input_type:
                continue
            if tap is not None:
                self._remove(name)
            channel = self._channel(config)
            dropped = self.metrics.payload_dropped.labels(name, "buffer_full")
            tap = AppTap(name, app.input_type, config, self.capacity, channel.wake, dropped)
            channel.taps[name] = self.taps[name] = tap
        self._changed.set()

    def _channel(self, config: PayloadLogConfig) -> SinkChannel:
        channel = self._channels.get(config.sink)
        if channel is None:
            channel = SinkChannel(config, self.settings, self.metrics)
            self._channels[config.sink] = channel
        return channel

    def _remove(self, name: str) -> None:
        tap = self.taps.pop(name)
        channel = self._channels[tap.config.sink]
        del channel.taps[name]
        if tap.entries:  # what it still holds is written as it was configured
            channel.retired.append(tap)
            channel.wake.set()

    async def run(self) -> None:
        """Run a writer per sink channel, started and stopped as `apply` changes them."""
        running: dict[str, tuple[SinkChannel, asyncio.Task[None]]] = {}
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    self._changed.clear()
                    await self._reconcile(group, running)
                    await self._changed.wait()
        finally:
            for _, task in running.values():
                task.cancel()

    async def _reconcile(
        self, group: asyncio.TaskGroup, running: dict[str, tuple[SinkChannel, asyncio.Task[None]]]
    ) -> None:
        for sink, channel in list(self._channels.items()):
            if not channel.taps and not channel.retired:  # no app writes there: close it
                del self._channels[sink]
        for sink, (channel, task) in list(running.items()):
            if self._channels.get(sink) is not channel:
                task.cancel()
                await asyncio.wait([task])
                del running[sink]
        for sink, channel in self._channels.items():
            if sink not in running:
                task = group.create_task(channel.run(), name=f"payload sink {sink}")
                running[sink] = (channel, task)
