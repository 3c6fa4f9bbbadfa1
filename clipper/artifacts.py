"""Model artifacts: the directory a model version is loaded from, packed as a tar archive.

An artifact directory holds `clipper_model.json` (its kind and the Python and cloudpickle
versions it was built with) and the kind's payload: `func.pkl` for a `python_closure`, the
model directory's own files (with `predict.py`) for a `python_directory`. See "Artifacts" in
docs/admin-api.md. Everything here is pure packing: no network, no server.
"""

from __future__ import annotations

import ast
import io
import json
import platform
import sys
import sysconfig
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from clipper.exceptions import InvalidRequest

__all__ = [
    "CLOSURE_FILE",
    "METADATA_FILE",
    "closure_artifact",
    "directory_artifact",
    "load_artifact_metadata",
    "pack_directory",
]

METADATA_FILE = "clipper_model.json"
"""Name of the metadata file at the root of every artifact."""

CLOSURE_FILE = "func.pkl"
"""Name of the cloudpickled callable in a `python_closure` artifact."""


def closure_artifact(func: Callable[..., Any], *, pkgs_to_install: Sequence[str] = ()) -> bytes:
    """A gzip tar holding `func.pkl` (cloudpickled `func`) and `clipper_model.json`.

    Functions defined in local code (modules outside site-packages and the standard library,
    e.g. a test module or a script) are pickled by value, so a worker can load them without
    importing the module they came from.
    """
    with _pickled_by_value(_local_module_of(func)):
        pickled = cloudpickle.dumps(func)
    metadata = _metadata("python_closure", pkgs_to_install)
    return _tar_bytes({CLOSURE_FILE: pickled, METADATA_FILE: _json_bytes(metadata)})


def directory_artifact(
    model_dir: Path,
    *,
    entry: str = "predict.py",
    function: str = "predict",
    pkgs_to_install: Sequence[str] = (),
) -> dict[str, Any]:
    """Check a `python_directory` model and return its metadata (not yet written anywhere).

    `model_dir` must contain `entry` defining `function(inputs)` at its top level.
    """
    entry_path = model_dir / entry
    if not entry_path.is_file():
        raise InvalidRequest(f"Model directory {model_dir} has no {entry}")
    if function not in _top_level_names(entry_path):
        raise InvalidRequest(f"{entry_path} does not define {function}(inputs)")
    return {**_metadata("python_directory", pkgs_to_install), "entry": entry, "function": function}


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


def _metadata(kind: str, pkgs_to_install: Sequence[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "kind": kind,
        "python_version": platform.python_version(),
        "cloudpickle_version": cloudpickle.__version__,
    }
    if pkgs_to_install:
        metadata["pkgs_to_install"] = list(pkgs_to_install)
    return metadata


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


def _top_level_names(path: Path) -> set[str]:
    """Names bound at the top level of a Python file (defs, assignments, imports)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise InvalidRequest(f"{path} is not valid Python: {exc}") from exc
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _local_module_of(func: Callable[..., Any]) -> ModuleType | None:
    """The module `func` was defined in, when it is local code rather than an installed one."""
    module_name = getattr(func, "__module__", None) or type(func).__module__
    module = sys.modules.get(module_name)
    module_file = getattr(module, "__file__", None)
    if module is None or module_name == "__main__" or module_file is None:
        return None
    installed = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib")}
    installed.add(sysconfig.get_paths()["platlib"])
    resolved = Path(module_file).resolve()
    if any(resolved.is_relative_to(Path(root).resolve()) for root in installed):
        return None
    return module


@contextmanager
def _pickled_by_value(module: ModuleType | None) -> Iterator[None]:
    """Register `module` with cloudpickle as pickled by value for the duration of the block."""
    if module is None or module.__name__ in cloudpickle.list_registry_pickle_by_value():
        yield
        return
    cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        cloudpickle.unregister_pickle_by_value(module)
