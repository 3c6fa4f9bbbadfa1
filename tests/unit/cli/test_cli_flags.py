"""CLI flags that need no server: --version, start's --log-level, the listings' --json, the
cluster flags before or after COMMAND, and a help text for every argument."""

from __future__ import annotations

import argparse

import pytest

from clipper.cli.main import build_parser, main, settings_from_args


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("clipper ")


def test_start_takes_a_log_level_that_becomes_the_setting() -> None:
    args = build_parser().parse_args(["start", "--log-level", "debug"])

    assert settings_from_args(args).log_level == "DEBUG"


@pytest.mark.parametrize("listing", ["apps", "models", "replicas"])
def test_every_listing_takes_json(listing: str) -> None:
    assert build_parser().parse_args([listing, "--json"]).json is True


# -- the cluster flags, before or after COMMAND (issue 21, item 8) -------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--admin-port", "9", "--state-dir", "/tmp/s", "status"],
        ["status", "--admin-port", "9", "--state-dir", "/tmp/s"],
        ["--admin-port", "9", "status", "--state-dir", "/tmp/s"],
    ],
)
def test_cluster_flags_go_before_or_after_the_command(argv: list[str]) -> None:
    settings = settings_from_args(build_parser().parse_args(argv))

    assert (settings.admin_port, str(settings.state_dir)) == (9, "/tmp/s")


def test_a_flag_after_the_command_wins_over_one_before() -> None:
    args = build_parser().parse_args(["--admin-port", "9", "status", "--admin-port", "10"])

    assert settings_from_args(args).admin_port == 10


def test_cluster_flags_are_listed_once_in_the_top_level_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--help"], ["scale", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    top, scale = capsys.readouterr().out.split("usage: clipper scale", 1)

    assert top.count("port of the admin API") == 1
    assert "port of the admin API" not in scale
    assert "ADMIN_PORT" not in scale
    assert "`clipper --help`" in scale


def test_every_argument_of_every_command_says_what_it_is() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undescribed = [
        f"{name} {action.dest}"
        for name, command in commands.choices.items()
        for action in command._actions
        if not action.help
    ]

    assert {"scale", "predict", "update-app"} <= set(commands.choices)
    assert undescribed == []
