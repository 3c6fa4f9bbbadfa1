"""An app's priority class in the registry: stored, changed by update_app, checked, reopened."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from clipper.control.store import Registry
from clipper.core.exceptions import AlreadyExists, InvalidRequest
from tests.unit.control.test_store import app


def test_the_priority_is_stored_changed_and_kept_across_a_reopen(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_app(replace(app("gold"), priority=3))
        registry.add_app(app("plain"))
        registry.update_app("plain", None, None, priority=7)
    with Registry.open(tmp_path) as reopened:
        gold, plain = reopened.get_app("gold"), reopened.get_app("plain")

    assert gold is not None
    assert plain is not None
    assert (gold.priority, plain.priority, plain.latency_slo_us) == (3, 7, 100_000)


@pytest.mark.parametrize("bad", [-1, 10, True])
def test_update_app_refuses_a_priority_outside_0_to_9(tmp_path: Path, bad: int) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_app(app())
        with pytest.raises(InvalidRequest, match="priority must be an integer from 0 to 9"):
            registry.update_app("app", None, None, priority=bad)
        stored = registry.get_app("app")

    assert stored is not None
    assert stored.priority == 0


def test_registering_the_app_again_with_another_priority_names_it(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_app(app())
        with pytest.raises(AlreadyExists, match="priority 0 \\(asked 2\\)"):
            registry.add_app(replace(app(), priority=2))
