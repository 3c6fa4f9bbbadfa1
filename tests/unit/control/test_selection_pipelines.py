"""Pipelines in the registry: types checked when defined, and kept consistent after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.control.store import Registry
from clipper.core.exceptions import Conflict, InvalidRequest, ModelNotFound
from clipper.core.records import AppRecord, ModelVersionRecord
from clipper.core.types import InputType

STRINGS, DOUBLES = InputType.STRINGS, InputType.DOUBLES


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "state") as opened:
        opened.add_app(AppRecord("texts", STRINGS, "-1", 100_000))
        opened.add_model_version(ModelVersionRecord("feat", "1", STRINGS, output_type=DOUBLES))
        opened.add_model_version(ModelVersionRecord("clf", "1", DOUBLES))
        yield opened


def test_a_well_typed_pipeline_is_stored(registry: Registry) -> None:
    registry.set_app_pipeline("texts", ["feat", "clf"])

    app = registry.get_app("texts")
    assert app is not None
    assert app.pipeline == ("feat", "clf")
    assert registry.snapshot().apps["texts"].pipeline == ("feat", "clf")


@pytest.mark.parametrize(
    ("models", "error", "match"),
    [
        (["clf"], Conflict, "gives 'strings' but model 'clf' takes 'doubles'"),
        (["feat", "feat"], InvalidRequest, "at most once"),
        (["feat", "nope"], ModelNotFound, "nope"),
    ],
)
def test_a_pipeline_whose_types_do_not_chain_is_refused(
    registry: Registry, models: list[str], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        registry.set_app_pipeline("texts", models)

    app = registry.get_app("texts")
    assert app is not None
    assert app.pipeline == ()


def test_a_step_must_declare_its_output_type(registry: Registry) -> None:
    registry.add_model_version(ModelVersionRecord("bare", "1", STRINGS))

    with pytest.raises(Conflict, match="does not declare its output type"):
        registry.set_app_pipeline("texts", ["bare", "clf"])


def test_a_new_version_that_would_break_a_pipeline_is_refused(registry: Registry) -> None:
    registry.set_app_pipeline("texts", ["feat", "clf"])

    with pytest.raises(Conflict, match="must declare output_type 'doubles'"):
        registry.add_model_version(ModelVersionRecord("feat", "2", STRINGS, output_type=STRINGS))
    registry.add_model_version(ModelVersionRecord("feat", "3", STRINGS, output_type=DOUBLES))


def test_a_pipeline_app_keeps_the_single_policy(registry: Registry) -> None:
    registry.set_app_pipeline("texts", ["feat", "clf"])

    with pytest.raises(Conflict, match="pipeline"):
        registry.set_app_policy("texts", "exp3", {})
    registry.set_app_pipeline("texts", [])
    registry.set_app_policy("texts", "exp3", {})
