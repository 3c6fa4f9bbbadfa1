"""The payload log's writer: taps follow the registry; a stalled sink drops and counts records
while the taps stay bounded; the JSONL sink rotates by size."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType
from clipper.dataplane.prediction import Prediction
from clipper.metrics.server_metrics import ServerMetrics
from clipper.payloads.jsonl import JsonlSink, rotate_file
from clipper.payloads.sinks import SinkSettings
from clipper.payloads.writer import PayloadLog, SinkChannel


def snapshot(**logs: PayloadLogConfig | None) -> RegistrySnapshot:
    apps = {name: AppRecord(name, InputType.DOUBLES, "-1", 1000, payload_log=log)
            for name, log in logs.items()}  # fmt: skip
    return RegistrySnapshot(apps=apps)


JSONL = PayloadLogConfig("jsonl", "jsonl")


def test_taps_follow_the_registry_in_place(tmp_path: Path) -> None:
    payloads = PayloadLog(SinkSettings(tmp_path), 10, ServerMetrics())
    taps = payloads.taps
    payloads.apply(snapshot(a=JSONL, b=None))
    assert list(taps) == ["a"]
    kept = taps["a"]
    payloads.apply(snapshot(a=JSONL))
    assert taps["a"] is kept
    payloads.apply(snapshot(a=None))
    assert payloads.taps is taps
    assert taps == {}


def test_a_version_logs_to_its_own_file_beside_the_apps(tmp_path: Path) -> None:
    payloads = PayloadLog(SinkSettings(tmp_path), 10, ServerMetrics())
    logged = ModelVersionRecord("m", "1", InputType.DOUBLES, payload_log=JSONL)
    plain = ModelVersionRecord("m", "2", InputType.DOUBLES)
    versions = {record.model_id: record for record in (logged, plain)}
    payloads.apply(RegistrySnapshot(apps=snapshot(m=JSONL).apps, versions=versions))
    assert list(payloads.taps) == ["m"]
    assert list(payloads.version_taps) == ["m:1"]
    tap = payloads.version_taps["m:1"]
    assert (tap.log, tap.labels) == ("models/m/1", ("", "m:1"))
    assert sorted(payloads.depths()) == [(("", "m:1"), 0), (("m", ""), 0)]

    async def write_one() -> None:
        tap.offer("a", [b"\0" * 8], [Prediction(1, 1.0, models=("m:1",))], 0.0)
        channel = SinkChannel(JSONL, SinkSettings(tmp_path), ServerMetrics())
        channel.taps[tap.log] = tap
        await channel.flush(JsonlSink(SinkSettings(tmp_path)))

    asyncio.run(write_one())
    [line] = (tmp_path / "models" / "m" / "1.jsonl").read_text().splitlines()
    assert json.loads(line)["app"] == "a"
    payloads.apply(RegistrySnapshot(apps=snapshot(m=JSONL).apps, versions={}))
    assert payloads.version_taps == {}


class StalledSink:
    kind = "stalled"

    async def write(self, log: str, records: list[dict[str, Any]]) -> None:
        await asyncio.sleep(3600)

    async def aclose(self) -> None:
        pass


async def test_a_stalled_sink_times_out_and_the_tap_stays_bounded(tmp_path: Path) -> None:
    metrics = ServerMetrics()
    payloads = PayloadLog(SinkSettings(tmp_path, timeout_s=0.05), 3, metrics)
    payloads.apply(snapshot(a=JSONL))
    tap = payloads.taps["a"]
    channel = SinkChannel(JSONL, SinkSettings(tmp_path, timeout_s=0.05), metrics)
    channel.taps["a"] = tap
    for index in range(5):
        tap.offer("a", [b"\0" * 8], [Prediction(index, 1.0)], 0.0)
    assert len(tap.entries) == 3
    assert metrics.payload_dropped.labels("a", "", "buffer_full").value == 2
    await channel.flush(StalledSink())
    assert metrics.payload_dropped.labels("a", "", "sink_timeout").value == 3
    assert tap.entries == []


def test_jsonl_appends_lines_and_rotates_past_the_size(tmp_path: Path) -> None:
    sink = JsonlSink(SinkSettings(tmp_path, max_bytes=100, backups=1))

    async def write_six() -> None:
        for index in range(6):
            await sink.write("a", [{"kind": "query", "query_id": index, "pad": "x" * 20}])

    asyncio.run(write_six())
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["a.jsonl", "a.jsonl.1"]
    newest = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert newest[-1]["query_id"] == 5
    assert all((tmp_path / name).stat().st_size <= 100 for name in files)


@pytest.mark.parametrize("backups", [0, 2])
def test_rotate_file_keeps_backups(tmp_path: Path, backups: int) -> None:
    path = tmp_path / "a.jsonl"
    for text in ("1", "2", "3"):
        path.write_text(text)
        rotate_file(path, backups)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [f"a.jsonl.{i}" for i in range(1, backups + 1)]
    if backups:
        assert (tmp_path / "a.jsonl.1").read_text() == "3"
