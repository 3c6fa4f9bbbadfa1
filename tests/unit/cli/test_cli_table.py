"""The CLI's table formatter and its pure helpers."""

from __future__ import annotations

import pytest

from clipper.cli.commands import format_table, previous_version
from clipper.cli.main import build_parser, settings_from_args
from clipper.core.exceptions import InvalidRequest


def test_columns_align_under_headers() -> None:
    table = format_table(["NAME", "INPUT"], [["app", "doubles"], ["longer-app", "ints"]])

    assert table.splitlines() == [
        "NAME        INPUT",
        "----------  -------",
        "app         doubles",
        "longer-app  ints",
    ]


def test_numeric_columns_are_right_aligned() -> None:
    table = format_table(["MODEL", "REPLICAS"], [["m", 1], ["n", 12]])

    assert table.splitlines()[2:] == ["m             1", "n            12"]


def test_cells_render_none_bools_and_lists() -> None:
    table = format_table(["A", "B", "C"], [[None, True, ["x", "y"]], [1, False, []]])

    assert table.splitlines()[2:] == ["-  yes  x, y", "1  no   -"]


def test_empty_table_has_header_and_rule_only() -> None:
    assert format_table(["NAME", "SLO_US"], []).splitlines() == ["NAME  SLO_US", "----  ------"]


def test_rollback_picks_the_version_created_just_before_current() -> None:
    versions = [
        {"model_version": "3", "created_at": 30.0},
        {"model_version": "1", "created_at": 10.0},
        {"model_version": "2", "created_at": 20.0},
    ]

    assert previous_version(versions, "3") == "2"


def test_rollback_falls_back_to_server_order() -> None:
    versions = [{"model_version": "a"}, {"model_version": "b"}, {"model_version": "c"}]

    assert previous_version(versions, "b") == "a"


def test_rollback_refuses_the_oldest_version() -> None:
    with pytest.raises(InvalidRequest, match="No version older"):
        previous_version([{"model_version": "1"}, {"model_version": "2"}], "1")


def test_cluster_flags_override_settings_defaults() -> None:
    args = build_parser().parse_args(["apps", "--admin-port", "9338", "--host", "10.0.0.1"])

    settings = settings_from_args(args)

    assert (settings.host, settings.admin_port) == ("10.0.0.1", 9338)
