"""The artifact format: the directory a model version is loaded from, packed as a tar archive.

An artifact directory holds `clipper_model.json` (its kind, the Python and cloudpickle
versions it was built with and the model's environment) and the kind's payload, which the
kind's own module (`clipper.artifacts.python`, `.sklearn`, `.pytorch`, ...) builds and
loads. See "Artifacts" in docs/admin-api.md. Everything here is pure packing: no network,
no server.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cloudpickle

from clipper.core.exceptions import InvalidRequest
from clipper.environments.spec import Environment

__all__ = [
    "METADATA_FILE",
    "artifact_environment",
    "artifact_metadata",
    "build_artifact",
    "directory_files",
    "load_artifact_metadata",
    "pack_directory",
]

METADATA_FILE = "clipper_model.json"
"""Name of the metadata file at the root of every artifact."""


def build_artifact(
    kind: str,
    files: Mapping[str, bytes],
    environment: Environment,
    **fields: Any,
) -> bytes:
    """A gzip tar of `files` plus `clipper_model.json` for an artifact of `kind`, recording
    the deploying process's Python and cloudpickle versions and the model's environment."""
    metadata = {**artifact_metadata(kind, environment), **fields}
    return _tar_bytes({**files, METADATA_FILE: _json_bytes(metadata)})


def directory_files(directory: Path, prefix: str = "") -> dict[str, bytes]:
    """Every file under `directory` (caches skipped), by its archive name under `prefix`."""
    if not directory.exists():
        raise InvalidRequest(f"model data path {directory} does not exist")
    if directory.is_file():
        return {f"{prefix}/{directory.name}".lstrip("/"): directory.read_bytes()}
    files = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            files[str(Path(prefix) / relative) if prefix else str(relative)] = path.read_bytes()
    return files


def pack_directory(directory: Path, metadata: dict[str, Any] | None = None) -> bytes:
    """A gzip tar of `directory`'s contents at the archive root.

    With `metadata`, it is written as `clipper_model.json` (replacing any such file in the
    directory); without, the directory must already hold a valid one.
    """
    if not directory.is_dir():
        raise InvalidRequest(f"Artifact directory {directory} does not exist")
    if metadata is None:
        load_artifact_metadata(directory)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.iterdir()):
            if metadata is None or path.name != METADATA_FILE:
                archive.add(path, arcname=path.name, filter=_skip_caches)
        if metadata is not None:
            _add_member(archive, METADATA_FILE, _json_bytes(metadata))
    return buffer.getvalue()


def load_artifact_metadata(path: Path) -> dict[str, Any]:
    """Read `clipper_model.json` from an artifact directory, the file itself, or a tar archive."""
    if path.is_dir():
        return _parse_metadata(_read_file(path / METADATA_FILE), path)
    if path.name == METADATA_FILE:
        return _parse_metadata(_read_file(path), path)
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, mode="r:*") as archive:
            return _parse_metadata(_read_member(archive, path), path)
    raise InvalidRequest(f"{path} is neither an artifact directory nor an artifact archive")


def artifact_environment(path: Path) -> Environment | None:
    """The environment recorded in an artifact (None for artifacts that record none)."""
    raw = load_artifact_metadata(path).get("environment")
    return None if raw is None else Environment.from_json(raw)


def artifact_metadata(kind: str, environment: Environment) -> dict[str, Any]:
    return {
        "kind": kind,
        "python_version": platform.python_version(),
        "cloudpickle_version": cloudpickle.__version__,
        "environment": environment.to_json(),
    }


def _parse_metadata(raw: bytes, source: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{METADATA_FILE} in {source} is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict) or not isinstance(metadata.get("kind"), str):
        raise InvalidRequest(f"{METADATA_FILE} in {source} must be an object with a 'kind'")
    return metadata


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidRequest(f"No {METADATA_FILE} at {path}") from exc


def _read_member(archive: tarfile.TarFile, source: Path) -> bytes:
    for name in (METADATA_FILE, f"./{METADATA_FILE}"):
        try:
            member = archive.extractfile(name)
        except KeyError:
            continue
        if member is not None:
            return member.read()
    raise InvalidRequest(f"No {METADATA_FILE} in archive {source}")


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            _add_member(archive, name, content)
    return buffer.getvalue()


def _add_member(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(content))


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    return None if "__pycache__" in parts or info.name.endswith(".pyc") else info


def _json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()
