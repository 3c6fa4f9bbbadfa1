"""The config file (issue 21, item 8): flags over the environment over the file over the
defaults; a bad key or value is one InvalidSettings naming the key and the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipper.cli.config_file import load_settings
from clipper.cli.launcher import _child_env
from clipper.cli.main import build_parser, settings_from_args
from clipper.core.exceptions import InvalidSettings


@pytest.fixture(autouse=True)
def no_clipper_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [key for key in os.environ if key.upper().startswith("CLIPPER_")]:
        monkeypatch.delenv(name)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clipper.toml"
    path.write_text(text)
    return path


def test_flags_win_over_the_environment_over_the_file_over_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, "query_port = 1\nadmin_port = 2\nrpc_port = 3\n")
    monkeypatch.setenv("CLIPPER_ADMIN_PORT", "20")
    monkeypatch.setenv("CLIPPER_QUERY_PORT", "10")
    settings = load_settings({"query_port": 100}, path)

    assert (settings.query_port, settings.admin_port, settings.rpc_port) == (100, 20, 3)
    assert settings.grpc_port == 8001  # the default


def test_every_command_takes_config_before_or_after_it(tmp_path: Path) -> None:
    path = config(tmp_path, 'cluster_name = "from-file"\nmax_body_bytes = 1024\n')
    for argv in (["--config", str(path), "apps"], ["apps", "--config", str(path)]):
        settings = settings_from_args(build_parser().parse_args(argv))
        assert (settings.cluster_name, settings.max_body_bytes) == ("from-file", 1024)


def test_clipper_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_CONFIG", str(config(tmp_path, "cache_bytes = 7\n")))

    assert settings_from_args(build_parser().parse_args(["status"])).cache_bytes == 7


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings({}, config(tmp_path, 'state_dir = "state"\n'))

    assert settings.state_dir == tmp_path / "state"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("query_prot = 5\n", "unknown key 'query_prot' (did you mean 'query_port'?)"),
        ('query_port = "abc"\n', "key 'query_port': Input should be a valid integer"),
        ("query_port = true\n", "key 'query_port' takes no boolean"),
        ('placement = "docker"\n', "key 'placement': Input should be 'local' or 'ray'"),
        ("worker_spin_us = -1\n", "key 'worker_spin_us': Input should be greater than"),
        ("[server]\nquery_port = 1\n", "unknown key 'server'"),
        ("query_port = [\n", "is not valid TOML"),
    ],
)
def test_a_bad_file_names_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(InvalidSettings) as raised:
        load_settings({}, path)

    assert str(raised.value).startswith(f"config file {path}")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match="No such file"):
        load_settings({}, tmp_path / "nope.toml")


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_QUERY_PORT", "xyz")
    with pytest.raises(InvalidSettings, match=r"invalid setting query_port \(CLIPPER_QUERY_PORT\)"):
        load_settings({})


def test_a_detached_server_gets_the_files_settings_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, "max_body_bytes = 1024\n")
    monkeypatch.setenv("CLIPPER_CONFIG", str(path))
    env = _child_env(load_settings({}))

    assert env["CLIPPER_MAX_BODY_BYTES"] == "1024"
    assert "CLIPPER_CONFIG" not in env
