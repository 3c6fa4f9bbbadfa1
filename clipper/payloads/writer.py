"""The payload log: each log's tap (clipper.payloads.tap) and, per sink, a background writer.

`apply(snapshot)` keeps `taps` and `version_taps` (the dicts the query surfaces read)
current in place: one tap per app and per model version whose `payload_log` is set, logs
with the same `sink` sharing one `SinkChannel`.
`run()` (supervised by the server) owns one task per channel: it waits for its `wake`
event, takes every waiting entry of its taps, renders them (on the loop, in slices, with
no I/O) and writes each log's batch, one write at a time, each bounded by
`payload_log_timeout_s`. A write that fails or times out drops its records (counted per
log and reason); meanwhile new entries queue in the taps, bounded, so a stalled sink drops
records and never blocks a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.records import RegistrySnapshot
from clipper.core.types import InputType
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads.records import render_entry
from clipper.payloads.sinks import PayloadSink, SinkSettings, open_sink
from clipper.payloads.tap import PayloadTap

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
        self.taps: dict[str, PayloadTap] = {}  # log -> tap
        self.retired: list[PayloadTap] = []  # taps replaced or removed, with entries to write
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
        """Write every entry waiting now, log by log."""
        retired, self.retired = self.retired, []
        for tap in [*retired, *self.taps.values()]:
            entries = tap.take()
            if entries:
                records = await self._render(tap, entries)
                await self._write(sink, tap, records)

    async def _render(self, tap: PayloadTap, entries: list[Any]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for start in range(0, len(entries), RENDER_SLICE):
            if start:
                await asyncio.sleep(0)  # let queries in between slices
            for entry in entries[start : start + RENDER_SLICE]:
                try:
                    records.extend(render_entry(tap.input_type, tap.fields, entry))
                except Exception:
                    log.exception("payload log %s: a record could not be rendered", tap.log)
                    self._dropped(tap, "encode_error", 1)
        return records

    async def _write(
        self, sink: PayloadSink, tap: PayloadTap, records: list[dict[str, Any]]
    ) -> None:
        if not records:
            return
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                await sink.write(tap.log, records)
        except TimeoutError:
            self._failed(tap, "sink_timeout", len(records), "timed out")
            return
        except Exception as exc:
            self._failed(tap, "sink_error", len(records), f"failed: {exc!r}")
            return
        if self._failing:
            log.info("payload sink %s of log %s writes again", self.config.sink, tap.log)
            self._failing = False
        self._metrics.payload_records.labels(*tap.labels, sink.kind).value += len(records)

    def _failed(self, tap: PayloadTap, reason: str, count: int, what: str) -> None:
        if not self._failing:
            log.warning("payload sink %s of log %s %s; its records are dropped (counted in "
                        "clipper_payload_log_dropped_total) until it writes again",
                        self.config.sink, tap.log, what)  # fmt: skip
            self._failing = True
        self._dropped(tap, reason, count)

    def _dropped(self, tap: PayloadTap, reason: str, count: int) -> None:
        self._metrics.payload_dropped.labels(*tap.labels, reason).value += count


class PayloadLog:
    """Every log's payload tap and the writers of their sinks (see the module docstring)."""

    def __init__(self, settings: SinkSettings, capacity: int, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.capacity = capacity
        self.metrics = metrics
        self.taps: dict[str, PayloadTap] = {}
        """app -> tap; changed in place only, so the query surfaces keep this very dict."""
        self.version_taps: dict[str, PayloadTap] = {}
        """`name:version` -> tap; changed in place only, as `taps`."""
        self._channels: dict[str, SinkChannel] = {}
        self._changed = asyncio.Event()
        metrics.watch_payload_buffers(self.depths)

    def depths(self) -> Iterator[tuple[tuple[str, str], int]]:
        """((app, model) labels, entries waiting) for each log."""
        for tap in [*self.taps.values(), *self.version_taps.values()]:
            yield tap.labels, len(tap.entries)

    def apply(self, snapshot: RegistrySnapshot) -> None:
        """Follow the registry: a tap for each app and version with a payload log, none for
        the others. A tap whose setting is unchanged stays (with what it holds)."""
        apps = {name: (app.payload_log, app.input_type) for name, app in snapshot.apps.items()}
        self._follow(self.taps, apps, _app_tap_names)
        versions = {
            str(model_id): (record.payload_log, record.input_type)
            for model_id, record in snapshot.versions.items()
        }
        self._follow(self.version_taps, versions, _version_tap_names)
        self._changed.set()

    def _follow(
        self,
        taps: dict[str, PayloadTap],
        wanted: dict[str, tuple[PayloadLogConfig | None, InputType]],
        names: Callable[[str], tuple[str, tuple[str, str]]],
    ) -> None:
        for key in [key for key in taps if wanted.get(key, (None,))[0] is None]:
            self._remove(taps, key)
        for key, (config, input_type) in wanted.items():
            tap = taps.get(key)
            if config is None or (tap and tap.config == config and tap.input_type is input_type):
                continue
            if tap is not None:
                self._remove(taps, key)
            channel = self._channel(config)
            log_name, labels = names(key)
            dropped = self.metrics.payload_dropped.labels(*labels, "buffer_full")
            tap = PayloadTap(log_name, labels, input_type, config, self.capacity, channel.wake,
                             dropped)  # fmt: skip
            channel.taps[log_name] = taps[key] = tap

    def _channel(self, config: PayloadLogConfig) -> SinkChannel:
        channel = self._channels.get(config.sink)
        if channel is None:
            channel = SinkChannel(config, self.settings, self.metrics)
            self._channels[config.sink] = channel
        return channel

    def _remove(self, taps: dict[str, PayloadTap], key: str) -> None:
        tap = taps.pop(key)
        channel = self._channels[tap.config.sink]
        del channel.taps[tap.log]
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


def _app_tap_names(app: str) -> tuple[str, tuple[str, str]]:
    """An app's log name (its JSONL file's stem) and metric labels."""
    return app, (app, "")


def _version_tap_names(label: str) -> tuple[str, tuple[str, str]]:
    """A version's (`name:version`) log name, `models/NAME/VERSION`, and metric labels."""
    name, _, version = label.partition(":")
    return f"models/{name}/{version}", ("", label)
