"""The config file: any `Settings` field as a top-level key of a TOML file.

    # clipper.toml
    cluster_name = "prod"
    query_port = 8080
    state_dir = "state"            # a relative path is relative to the file's directory
    cors_allowed_origins = ["http://localhost:8000"]

The CLI reads it from `--config FILE`, else from `CLIPPER_CONFIG`. Precedence, highest
first: CLI flags, `CLIPPER_<FIELD>` variables, the config file, the `Settings` defaults.
A key that is no field, or a value of the wrong type, is InvalidSettings naming the key and
the file; so is a bad flag or variable, naming it.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from clipper.core.config import Settings, environment_config_file, fields_in_environment
from clipper.core.exceptions import InvalidSettings

__all__ = ["load_settings", "read_config_file"]


def load_settings(flags: Mapping[str, Any], config_file: Path | None = None) -> Settings:
    """Settings from `flags` (field name to value), over the environment, over the config
    file (`config_file`, else `CLIPPER_CONFIG`; none: skipped), over the defaults."""
    path = config_file or environment_config_file()
    from_file = read_config_file(path) if path is not None else {}
    in_environment = fields_in_environment()
    values = {key: value for key, value in from_file.items() if key not in in_environment}
    values.update(flags)
    try:
        return Settings(**values)
    except ValidationError as exc:  # the file checked out: a flag or a variable
        key, problem = _first_problem(exc)
        where = f"--{key.replace('_', '-')}" if key in flags else f"CLIPPER_{key.upper()}"
        raise InvalidSettings(f"invalid setting {key} ({where}): {problem}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file holds, checked (every key a field, every value of its
    type); relative paths made relative to the file's directory."""
    values = _parse(path)
    for key, value in values.items():
        if key not in Settings.model_fields:
            raise InvalidSettings(f"config file {path}: unknown key {key!r}{_did_you_mean(key)}")
        if isinstance(value, bool) and bool not in _types(key):  # pydantic takes true as 1
            raise InvalidSettings(f"config file {path}: key {key!r} takes no boolean (got {value})")
        if isinstance(value, str) and Path in _types(key) and not Path(value).is_absolute():
            values[key] = str(path.parent / value)
    try:
        _FileOnly(**values)
    except ValidationError as exc:
        key, problem = _first_problem(exc)
        raise InvalidSettings(f"config file {path}: key {key!r}: {problem}") from None
    return values


def _parse(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidSettings(f"config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidSettings(f"config file {path} is not valid TOML: {exc}") from None


def _types(key: str) -> set[Any]:
    annotation = Settings.model_fields[key].annotation
    return {annotation, *typing.get_args(annotation)}


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return " (the keys are the fields of clipper.core.config.Settings)"


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    """The field and the message of a validation error's first problem, on one line."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else "?"
    message = " ".join(str(error["msg"]).split())
    return key, f"{message} (got {error.get('input')!r:.80})"


class _FileOnly(Settings):
    """Settings validated from their given values and the defaults alone, no environment:
    what a config file says, checked before the environment goes over it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
