"""CLI flags that need no server: --version, start's --log-level, the listings' --json."""

from __future__ import annotations

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
