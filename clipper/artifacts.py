"""Model artifacts: the directory a model version is loaded from, packed as a tar archive.

An artifact directory holds `clipper_model.json` (its kind, the Python and cloudpickle
versions it was built with and the model's environment) and the kind's payload: `func.pkl`
for a `python_closure`, `model_class.pkl` and `data/` for a `python_class`, the model
directory's own files (with `predict.py`) for a `python_directory`; the framework kinds are
built in `clipper.deployers`. See "Artifacts" in docs/admin-api.md. Everything here is pure
packing: no network, no server.
"""

from __future__ import annotations

import ast
import io
import json
import platform
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from clipper.environments.capture import capture_pickle, imports_of_directory
from clipper.environments.declare import EnvironmentArg, declare_environment
from clipper.environments.spec import Environment
from clipper.exceptions import InvalidRequest

__all__ = [
    "CLASS_FILE",
    "CLOSURE_FILE",
    "DATA_DIR",
    "METADATA_FILE",
    "artifact_environment",
    "build_artifact",
    "class_artifact",
    "closure_artifact",
    "directory_artifact",
    "directory_files",
    "load_artifact_metadata",
    "pack_directory",
]

METADATA_FILE = "clipper_model.json"
"""Name of the metadata file at the root of every artifact."""

CLOSURE_FILE = "func.pkl"
"""Name of the cloudpickled callable in a `python_closure` artifact."""

CLASS_FILE = "model_class.pkl"
"""Name of the cloudpickled class (or instance) in a `python_class` artifact."""

DATA_DIR = "data"
"""Directory of a `python_class` artifact passed to the model's `load(path)`."""


def build_artifact(
    kind: str,
    files: Mapping[str, bytes],
    environment: Environment,
    **fields: Any,
) -> bytes:
    """A gzip tar of `files` plus `clipper_model.json` for an artifact of `kind`, recording
    the deploying process's Python and cloudpickle versions and the model's environment."""
    metadata = {**_metadata(kind, environment), **fields}
    return _tar_bytes({**files, METADATA_FILE: _json_bytes(metadata)})


def closure_artifact(
    func: Callable[..., Any],
    *,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A gzip tar holding `func.pkl` (cloudpickled `func`) and `clipper_model.json`.

    Functions defined in local code (modules outside site-packages and the standard library,
    e.g. a test module or a script) are pickled by value, so a worker can load them without
    importing the module they came from. `environment` is `"capture"` (the installed
    versions of the packages `func` refers to), a requirements file, a list, or None.
    """
    pickled, modules = capture_pickle(func)
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    return build_artifact("python_closure", {CLOSURE_FILE: pickled}, declared)


def class_artifact(
    model_class: type | object,
    *,
    model_data_path: str | Path | None = None,
    environment: EnvironmentArg = "capture",
    pkgs_to_install: Sequence[str] = (),
) -> bytes:
    """A `python_class` artifact: a class (or an instance) with `predict(self, inputs)` and
    optionally `load(self, path)`, which the worker calls once with the artifact's `data`
    directory: a copy of `model_data_path` when given."""
    if not callable(getattr(model_class, "predict", None)):
        raise InvalidRequest(f"{model_class!r} has no predict(self, inputs) method")
    pickled, modules = capture_pickle(model_class)
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    files = {CLASS_FILE: pickled}
    if model_data_path is not None:
        files.update(directory_files(Path(model_data_path), prefix=DATA_DIR))
    return build_artifact("python_class", files, declared, data_dir=DATA_DIR)


def directory_artifact(
    model_dir: Path,
    *,
    entry: str = "predict.py",
    function: str | None = None,
    environment: EnvironmentArg | None = None,
    pkgs_to_install: Sequence[str] = (),
) -> dict[str, Any]:
    """Check a `python_directory` model and return its metadata (not yet written anywhere).

    `model_dir` must contain `entry` defining, at its top level, `function(inputs)` or a
    class with a `predict(self, inputs)` method (found by itself when `function` is None:
    a function named `predict`, else the one class with a `predict` method). The
    environment defaults to the directory's `requirements.txt`, else to the installed
    versions of the packages its `.py` files import.
    """
    entry_path = model_dir / entry
    if not entry_path.is_file():
        raise InvalidRequest(f"Model directory {model_dir} has no {entry}")
    target = _entry_point(entry_path, function)
    requirements_file = model_dir / "requirements.txt"
    if environment is None:
        environment = requirements_file if requirements_file.is_file() else "capture"
    modules = imports_of_directory(model_dir) if environment == "capture" else set()
    declared = declare_environment(environment, modules=modules, pkgs_to_install=pkgs_to_install)
    return {**_metadata("python_directory", declared), "entry": entry, **target}


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


def _metadata(kind: str, environment: Environment) -> dict[str, Any]:
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


def _entry_point(path: Path, name: str | None) -> dict[str, str]:
    """`{"function": name}` or `{"class": name}`: what the worker calls in `path`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise InvalidRequest(f"{path} is not valid Python: {exc}") from exc
    functions, classes, other = set(), {}, set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
        elif isinstance(node, ast.ClassDef):
            methods = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            classes[node.name] = "predict" in methods
        else:
            other |= _bound_names(node)
    if name is None:
        with_predict = [cls for cls, has in classes.items() if has]
        if "predict" in functions or (not with_predict and "predict" in other):
            return {"function": "predict"}
        if len(with_predict) == 1:
            return {"class": with_predict[0]}
        raise InvalidRequest(
            f"{path} does not define predict(inputs) nor exactly one class with a predict "
            f"method (found classes: {', '.join(with_predict) or 'none'}); name the entry point"
        )
    if name in classes:
        return {"class": name}
    if name in functions or name in other:
        return {"function": name}
    raise InvalidRequest(f"{path} does not define {name}")


def _bound_names(node: ast.stmt) -> set[str]:
    """Names bound by a top-level assignment or import."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {target.id for target in targets if isinstance(target, ast.Name)}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return set()
