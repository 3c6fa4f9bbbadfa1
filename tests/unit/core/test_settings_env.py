"""Every setting survives the trip through the environment (issue 21, item 1): what
`Settings.to_env` writes, `Settings` reads back as the same value, for every field and
every type (lists, booleans, paths, secrets, optional fields), and through the launcher's
environment for a detached server."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from clipper.cli.launcher import _child_env
from clipper.core.config import Settings

# Fields whose values are constrained beyond their type: a valid value other than the default.
CHOSEN: dict[str, Any] = {
    "query_http": "uvicorn",
    "placement": "ray",
    "log_level": "DEBUG",
    "env_installer": "pip",
    "cors_allowed_origins": ["http://127.0.0.1:8000", "https://app.example"],
    "admin_token": SecretStr("s3cret-token"),
    "replica_memory_limit": "2147483648",
    "gpus": '[{"name": "fake-a100", "memory": 40000000000}, {}]',
    "otel_protocol": "grpc",
    "otel_sample_ratio": 0.25,
}


def other_value(name: str) -> Any:
    """A value of field `name` that is not its default."""
    if name in CHOSEN:
        return CHOSEN[name]
    field = Settings.model_fields[name]
    kinds = [arg for arg in typing.get_args(field.annotation) if arg is not type(None)]
    kind = kinds[0] if kinds else field.annotation
    default = field.default
    if kind is bool:
        return not default
    if kind is int:
        return (default or 0) + 7
    if kind is float:
        return (default or 0.0) + 0.25
    if kind is Path:
        return Path(f"/tmp/clipper-{name}")
    if kind is str:
        return f"value-of-{name}".replace("_", "-")
    raise AssertionError(f"no test value for {name}: {field.annotation}")


def every_field_changed() -> Settings:
    return Settings(**{name: other_value(name) for name in Settings.model_fields})


def as_read(settings: Settings) -> dict[str, Any]:
    values = settings.model_dump()
    for name, value in values.items():
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
    return values


def test_every_field_round_trips_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = every_field_changed()
    for name in Settings.model_fields:
        monkeypatch.delenv(f"CLIPPER_{name.upper()}", raising=False)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)

    assert as_read(Settings()) == as_read(settings)


def test_a_detached_servers_environment_reads_back_as_the_callers_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = every_field_changed()
    monkeypatch.setenv("CLIPPER_RPC_ADVERTISE_HOST", "stale.example")  # unset by the caller
    settings = settings.model_copy(update={"rpc_advertise_host": None})
    env = _child_env(settings)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"CLIPPER_{name.upper()}", raising=False)
    for key, value in env.items():
        if key.startswith("CLIPPER_"):
            monkeypatch.setenv(key, value)

    expected = as_read(settings)
    expected["state_dir"] = settings.resolved_state_dir()
    assert as_read(Settings()) == expected
    assert env["CLIPPER_CORS_ALLOWED_ORIGINS"] == "http://127.0.0.1:8000,https://app.example"
