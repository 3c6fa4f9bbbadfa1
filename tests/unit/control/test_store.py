"""Unit tests for clipper.control.store.Registry against real SQLite files."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clipper.control.schema import SCHEMA_VERSION
from clipper.control.store import Registry
from clipper.core.exceptions import (
    AlreadyExists,
    ApplicationNotFound,
    Conflict,
    InvalidName,
    InvalidRequest,
    ModelNotFound,
    NotFound,
)
from clipper.core.payload_config import parse_payload_log
from clipper.core.records import AppRecord, ModelVersionRecord
from clipper.core.types import InputType, ModelId


class FakeClock:
    """Returns 1000.0, 1001.0, ... on successive calls."""

    def __init__(self) -> None:
        self.now = 999.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "state", clock=FakeClock()) as opened:
        yield opened


def app(name: str = "app", input_type: InputType = InputType.DOUBLES) -> AppRecord:
    return AppRecord(name, input_type, default_output="-1", latency_slo_us=100_000)


def version(
    name: str = "model", version: str = "1", input_type: InputType = InputType.DOUBLES, **kw: object
) -> ModelVersionRecord:
    return ModelVersionRecord(name, version, input_type, **kw)  # type: ignore[arg-type]


def linked_registry(registry: Registry) -> Registry:
    registry.add_app(app())
    registry.add_model_version(version())
    registry.add_links("app", ["model"])
    return registry


# -- opening --------------------------------------------------------------------------


def test_open_creates_directory_and_versioned_wal_database(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "new" / "dir"):
        pass
    conn = sqlite3.connect(tmp_path / "new" / "dir" / "registry.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    Registry.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "registry.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(Conflict, match="newer"):
        Registry.open(tmp_path)


def test_close_is_idempotent_and_ends_use(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path)
    registry.close()
    registry.close()
    with pytest.raises(sqlite3.ProgrammingError):
        registry.list_apps()


# -- applications ---------------------------------------------------------------------


def test_add_and_get_app(registry: Registry) -> None:
    registry.add_app(app())
    assert registry.get_app("app") == app()


def test_get_unknown_app_is_none(registry: Registry) -> None:
    assert registry.get_app("nope") is None


def test_adding_the_same_app_again_changes_nothing(registry: Registry) -> None:
    assert registry.add_app(app())
    assert not registry.add_app(app())  # a script run again
    assert registry.list_apps() == [app()]


def test_adding_an_app_again_with_other_settings_names_what_differs(registry: Registry) -> None:
    registry.add_app(app())
    other = dataclasses.replace(app(), latency_slo_us=app().latency_slo_us + 1)
    with pytest.raises(AlreadyExists, match=r"'app' already exists with latency_slo_micros"):
        registry.add_app(other)


def test_a_version_that_exists_names_the_next_one(registry: Registry) -> None:
    registry.add_model_version(version("model", "1"))
    registry.add_model_version(version("model", "7"))
    assert registry.next_version("model") == "8"
    assert registry.next_version("new") == "1"
    with pytest.raises(AlreadyExists, match=r"the next is 8"):
        registry.add_model_version(version("model", "7"))


def test_add_app_validates_name(registry: Registry) -> None:
    with pytest.raises(InvalidName):
        registry.add_app(app("Bad_Name"))
    assert registry.list_apps() == []


def test_list_apps_is_sorted_by_name(registry: Registry) -> None:
    for name in ("b", "c", "a"):
        registry.add_app(app(name))
    assert [record.name for record in registry.list_apps()] == ["a", "b", "c"]


def test_delete_app_removes_it_and_its_links(registry: Registry) -> None:
    linked_registry(registry).delete_app("app")
    assert registry.get_app("app") is None
    registry.add_app(app())
    assert registry.linked_models("app") == []


def test_delete_unknown_app_raises(registry: Registry) -> None:
    with pytest.raises(ApplicationNotFound, match="nope"):
        registry.delete_app("nope")


def test_set_app_policy_stores_policy_and_params(registry: Registry) -> None:
    registry.add_app(app())
    registry.set_app_policy("app", "exp3", {"eta": 0.1})
    record = registry.get_app("app")
    assert record is not None
    assert record.policy == "exp3"
    assert registry.get_policy_params("app") == {"eta": 0.1}


def test_policy_params_default_to_empty(registry: Registry) -> None:
    registry.add_app(app())
    assert registry.get_policy_params("app") == {}


def test_set_app_policy_on_unknown_app_raises(registry: Registry) -> None:
    with pytest.raises(ApplicationNotFound):
        registry.set_app_policy("nope", "exp3", {})


def test_set_app_policy_rejects_unserialisable_params(registry: Registry) -> None:
    registry.add_app(app())
    with pytest.raises(InvalidRequest, match="JSON"):
        registry.set_app_policy("app", "exp3", {"eta": object()})


def test_policy_state_round_trips(registry: Registry) -> None:
    registry.add_app(app())
    assert registry.get_policy_state("app") is None
    registry.set_policy_state("app", b"\x00state")
    assert registry.get_policy_state("app") == b"\x00state"


def test_policy_state_of_unknown_app_raises(registry: Registry) -> None:
    with pytest.raises(ApplicationNotFound):
        registry.get_policy_state("nope")
    with pytest.raises(ApplicationNotFound):
        registry.set_policy_state("nope", b"state")


def test_changing_policy_discards_its_state(registry: Registry) -> None:
    registry.add_app(app())
    registry.set_policy_state("app", b"state")
    registry.set_app_policy("app", "single", {"x": 1})
    assert registry.get_policy_state("app") == b"state"
    registry.set_app_policy("app", "exp4", {})
    assert registry.get_policy_state("app") is None


# -- model versions -------------------------------------------------------------------


def test_add_and_get_model_version_keeps_every_field(registry: Registry) -> None:
    record = version(
        labels=("a", "b"),
        container_name="img",
        model_data_path="/data",
        batch_size=8,
        num_replicas=2,
        created_at=5.0,
    )
    registry.add_model_version(record)
    assert registry.get_model_version("model", "1") == record


def test_get_unknown_model_version_is_none(registry: Registry) -> None:
    assert registry.get_model_version("model", "1") is None


def test_created_at_defaults_to_now(registry: Registry) -> None:
    registry.add_model_version(version())
    record = registry.get_model_version("model", "1")
    assert record is not None
    assert record.created_at == 1000.0


def test_add_model_version_twice_raises_already_exists(registry: Registry) -> None:
    registry.add_model_version(version())
    with pytest.raises(AlreadyExists, match="model:1"):
        registry.add_model_version(version())


def test_add_model_version_with_other_input_type_conflicts(registry: Registry) -> None:
    registry.add_model_version(version())
    with pytest.raises(Conflict, match=r"input type 'doubles'.*'strings'"):
        registry.add_model_version(version(version="2", input_type=InputType.STRINGS))
    assert registry.list_model_versions("model") == [registry.get_model_version("model", "1")]


def test_add_model_version_validates_replicas(registry: Registry) -> None:
    with pytest.raises(InvalidRequest):
        registry.add_model_version(version(num_replicas=-1))
    with pytest.raises(Conflict, match="containerless model"):
        registry.add_model_version(version(containerless=True, num_replicas=1))


def test_add_model_version_makes_it_current_by_default(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    registry.add_model_version(version(version="2"))
    assert registry.get_current_version("model") == "2"


def test_add_model_version_without_make_current(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    registry.add_model_version(version(version="2"), make_current=False)
    assert registry.get_current_version("model") == "1"


def test_delete_model_version(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    registry.add_model_version(version(version="2"), make_current=False)
    registry.delete_model_version("model", "2")
    assert registry.get_model_version("model", "2") is None
    assert registry.get_current_version("model") == "1"


def test_delete_unknown_model_version_raises(registry: Registry) -> None:
    with pytest.raises(ModelNotFound):
        registry.delete_model_version("model", "1")


def test_deleting_current_version_leaves_no_current(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    registry.add_model_version(version(version="2"))
    registry.delete_model_version("model", "2")
    assert registry.get_current_version("model") is None


def test_deleting_last_version_removes_links(registry: Registry) -> None:
    linked_registry(registry).add_model_version(version(version="2"))
    registry.delete_model_version("model", "1")
    assert registry.linked_models("app") == ["model"]
    registry.delete_model_version("model", "2")
    assert registry.linked_models("app") == []


def test_list_model_versions_orders_by_name_then_creation(registry: Registry) -> None:
    registry.add_model_version(version("b", "1", created_at=1.0))
    registry.add_model_version(version("a", "new", created_at=3.0))
    registry.add_model_version(version("a", "old", created_at=2.0))
    listed = registry.list_model_versions()
    assert [str(record.model_id) for record in listed] == ["a:old", "a:new", "b:1"]
    assert [record.version for record in registry.list_model_versions("a")] == ["old", "new"]


def test_set_current_version(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    registry.add_model_version(version(version="2"))
    registry.set_current_version("model", "1")
    assert registry.get_current_version("model") == "1"


def test_set_current_version_of_unknown_model_raises(registry: Registry) -> None:
    with pytest.raises(ModelNotFound, match="No model with name 'model'"):
        registry.set_current_version("model", "1")


def test_set_current_version_to_unknown_version_raises(registry: Registry) -> None:
    registry.add_model_version(version())
    with pytest.raises(ModelNotFound, match="version '9'"):
        registry.set_current_version("model", "9")


def test_get_current_version_of_unknown_model_is_none(registry: Registry) -> None:
    assert registry.get_current_version("model") is None


def test_previous_current_version_follows_switches(registry: Registry) -> None:
    registry.add_model_version(version(version="1"))
    assert registry.previous_current_version("model") is None
    registry.add_model_version(version(version="2"))
    assert registry.previous_current_version("model") == "1"
    registry.set_current_version("model", "1")
    assert registry.previous_current_version("model") == "2"


def test_previous_current_version_skips_deleted_versions(registry: Registry) -> None:
    for number in ("1", "2", "3"):
        registry.add_model_version(version(version=number))
    registry.delete_model_version("model", "2")
    assert registry.previous_current_version("model") == "1"
    registry.delete_model_version("model", "3")
    assert registry.previous_current_version("model") == "1"


def test_set_num_replicas(registry: Registry) -> None:
    registry.add_model_version(version())
    registry.set_num_replicas("model", "1", 3)
    record = registry.get_model_version("model", "1")
    assert record is not None
    assert record.num_replicas == 3


def test_set_num_replicas_on_containerless_conflicts(registry: Registry) -> None:
    registry.add_model_version(version(containerless=True))
    with pytest.raises(Conflict, match="containerless model"):
        registry.set_num_replicas("model", "1", 1)


def test_set_num_replicas_rejects_negative_and_unknown(registry: Registry) -> None:
    registry.add_model_version(version())
    with pytest.raises(InvalidRequest):
        registry.set_num_replicas("model", "1", -1)
    with pytest.raises(ModelNotFound):
        registry.set_num_replicas("model", "2", 1)


def test_a_versions_payload_log_is_stored_and_changed(registry: Registry) -> None:
    config = parse_payload_log({"sink": "jsonl", "sample": 0.5, "fields": ["output"]})
    registry.add_model_version(version(payload_log=config))
    registry.add_model_version(version(version="2"))
    stored = registry.get_model_version("model", "1")
    assert stored is not None
    assert stored.payload_log == config
    assert registry.snapshot().versions[ModelId("model", "2")].payload_log is None
    registry.set_version_payload_log("model", "2", config)
    registry.set_version_payload_log("model", "1", None)
    versions = registry.snapshot().versions
    assert versions[ModelId("model", "1")].payload_log is None
    assert versions[ModelId("model", "2")].payload_log == config
    with pytest.raises(ModelNotFound):
        registry.set_version_payload_log("model", "3", None)


# -- links ----------------------------------------------------------------------------


def test_add_links_and_list_them(registry: Registry) -> None:
    registry.add_app(app())
    registry.add_model_version(version("b"))
    registry.add_model_version(version("a"))
    registry.add_links("app", ["b", "a"])
    assert registry.linked_models("app") == ["a", "b"]


def test_add_existing_link_is_a_no_op(registry: Registry) -> None:
    linked_registry(registry).add_links("app", ["model", "model"])
    assert registry.linked_models("app") == ["model"]


def test_add_links_to_unknown_app_raises(registry: Registry) -> None:
    registry.add_model_version(version())
    with pytest.raises(ApplicationNotFound):
        registry.add_links("app", ["model"])


def test_add_links_to_unknown_model_raises_and_links_nothing(registry: Registry) -> None:
    registry.add_app(app())
    registry.add_model_version(version())
    with pytest.raises(ModelNotFound, match="No model with name 'ghost'"):
        registry.add_links("app", ["model", "ghost"])
    assert registry.linked_models("app") == []


def test_add_links_with_mismatched_input_type_conflicts(registry: Registry) -> None:
    registry.add_app(app(input_type=InputType.STRINGS))
    registry.add_model_version(version())
    with pytest.raises(Conflict, match="input type"):
        registry.add_links("app", ["model"])


def test_delete_links(registry: Registry) -> None:
    linked_registry(registry).delete_links("app", ["model"])
    assert registry.linked_models("app") == []


def test_delete_missing_link_raises_not_found(registry: Registry) -> None:
    registry.add_app(app())
    with pytest.raises(NotFound, match="not linked"):
        registry.delete_links("app", ["model"])
    with pytest.raises(ApplicationNotFound):
        registry.delete_links("nope", ["model"])


def test_linked_models_of_unknown_app_raises(registry: Registry) -> None:
    with pytest.raises(ApplicationNotFound):
        registry.linked_models("nope")


# -- events, snapshot, persistence ----------------------------------------------------


def test_recent_events_are_newest_first(registry: Registry) -> None:
    registry.record_event("deploy", {"model": "m", "replicas": 2})
    registry.record_event("link", {"app": "a"})
    assert registry.recent_events() == [
        {"ts": 1001.0, "kind": "link", "detail": {"app": "a"}},
        {"ts": 1000.0, "kind": "deploy", "detail": {"model": "m", "replicas": 2}},
    ]
    assert [event["kind"] for event in registry.recent_events(limit=1)] == ["link"]


def test_record_event_rejects_bad_input(registry: Registry) -> None:
    with pytest.raises(InvalidRequest):
        registry.record_event("deploy", {"when": object()})
    with pytest.raises(InvalidRequest):
        registry.recent_events(limit=-1)
    assert registry.recent_events() == []


def test_snapshot_holds_everything(registry: Registry) -> None:
    linked_registry(registry).add_app(app("lonely"))
    snapshot = registry.snapshot()
    assert snapshot.apps == {"app": app(), "lonely": app("lonely")}
    assert list(snapshot.versions) == [ModelId("model", "1")]
    assert snapshot.current_versions == {"model": "1"}
    assert snapshot.links == {"app": ("model",), "lonely": ()}


def test_everything_survives_reopening(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as first:
        linked_registry(first).add_model_version(version(version="2"))
        first.set_policy_state("app", b"state")
        first.record_event("deploy", {"n": 1})
        before = first.snapshot()
    with Registry.open(tmp_path) as second:
        assert second.snapshot() == before
        assert second.previous_current_version("model") == "1"
        assert second.get_policy_state("app") == b"state"
        assert second.recent_events()[0]["detail"] == {"n": 1}


def test_two_registries_on_one_directory_see_each_others_changes(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as first, Registry.open(tmp_path) as second:
        first.add_app(app())
        assert second.get_app("app") == app()
        second.delete_app("app")
        assert first.list_apps() == []


def test_registry_is_safe_to_share_between_threads(registry: Registry) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: registry.record_event("tick", {"n": n}), range(50)))
    details = [event["detail"]["n"] for event in registry.recent_events(limit=100)]
    assert sorted(details) == list(range(50))
