"""Unit tests for the registry's autoscaling settings and decisions (real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.control.store import Registry
from clipper.core.exceptions import Conflict, ModelNotFound
from clipper.core.records import ModelVersionRecord
from clipper.core.types import InputType

CONFIG = {"min_replicas": 1, "max_replicas": 4}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "state") as opened:
        opened.add_model_version(ModelVersionRecord("m", "1", InputType.DOUBLES, num_replicas=1))
        yield opened


def test_settings_persist_across_opens(registry: Registry, tmp_path: Path) -> None:
    registry.set_autoscaling("m", "1", CONFIG)
    registry.close()
    with Registry.open(tmp_path / "state") as reopened:
        assert reopened.autoscaling() == {("m", "1"): (CONFIG, None)}


def test_a_decision_scales_and_is_an_event(registry: Registry) -> None:
    registry.set_autoscaling("m", "1", CONFIG)
    registry.record_autoscaled("m", "1", 3, {"reason": "scaled m:1 from 1 to 3: busy"})
    version = registry.get_model_version("m", "1")
    assert version is not None
    assert version.num_replicas == 3
    assert registry.autoscaling()[("m", "1")][1] == {"reason": "scaled m:1 from 1 to 3: busy"}
    [event] = registry.recent_events(1)
    assert event["kind"] == "autoscaled"


def test_a_decision_after_turning_off_changes_nothing(registry: Registry) -> None:
    registry.set_autoscaling("m", "1", CONFIG)
    registry.set_autoscaling("m", "1", None)
    registry.record_autoscaled("m", "1", 3, {"reason": "late"})
    version = registry.get_model_version("m", "1")
    assert version is not None
    assert version.num_replicas == 1
    assert registry.autoscaling() == {}


def test_settings_go_with_their_version(registry: Registry) -> None:
    registry.set_autoscaling("m", "1", CONFIG)
    registry.delete_model_version("m", "1")
    assert registry.autoscaling() == {}
    with pytest.raises(ModelNotFound):
        registry.set_autoscaling("m", "1", CONFIG)


def test_containerless_versions_are_not_autoscaled(registry: Registry) -> None:
    registry.add_model_version(
        ModelVersionRecord("ext", "1", InputType.DOUBLES, containerless=True)
    )
    with pytest.raises(Conflict, match="containerless"):
        registry.set_autoscaling("ext", "1", CONFIG)
