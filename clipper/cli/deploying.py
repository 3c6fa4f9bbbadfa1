"""Deploying a Python file's function (or class), shared by `clipper deploy --file` and
`clipper serve`: loading it, naming the model, choosing the version, uploading it.

A user's file is imported in this process (its errors are one line that says where) and its
function pickled by value, so a worker never imports the file itself.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipper.artifacts.python import closure_artifact
from clipper.core.exceptions import InvalidRequest
from clipper.core.types import validate_name

if TYPE_CHECKING:
    from clipper.client import AdminClient

__all__ = [
    "deploy_function_file",
    "load_function",
    "model_name_of",
    "next_version",
    "print_progress",
    "version_and_type",
]


def load_function(path: Path, name: str) -> Callable[..., Any]:
    """Import `name` from the Python file `path`, registered to be pickled by value.

    Each call executes the file again (a fresh module), so an edited file is read anew.
    """
    if not path.is_file():
        raise InvalidRequest(f"No such file: {path}")
    module_name = f"clipper_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidRequest(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: one line that says where, not a traceback
        del sys.modules[module_name]
        raise InvalidRequest(f"could not import {path}: {_where(exc, path)}") from None
    import cloudpickle  # only deploying needs it

    cloudpickle.register_pickle_by_value(module)
    function: object = getattr(module, name, None)
    if not callable(function):
        defined = sorted(
            attribute for attribute, value in vars(module).items()
            if callable(value) and getattr(value, "__module__", None) == module_name
        )  # fmt: skip
        listed = ", ".join(defined) if defined else "none"
        raise InvalidRequest(
            f"{path} defines no function {name!r}; it defines: {listed} (choose with --function)"
        )
    return function


def _where(exc: BaseException, path: Path) -> str:
    """`Type: message (file, line n)` of an exception raised by the code in `path`."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    line = next(
        (frame.lineno for frame in reversed(traceback.extract_tb(exc.__traceback__))
         if Path(frame.filename) == path),
        None,
    )  # fmt: skip
    place = f" ({path}, line {line})" if line is not None else ""
    return f"{type(exc).__name__}: {exc}{place}"


def model_name_of(text: str) -> str:
    """A valid model or app name made of `text` (a file's stem, a directory's name):
    lowercased, each run of other characters than letters and digits one dash
    (`my_model` -> `my-model`), no dash at either end."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return validate_name(name, f"name made of {text!r}")


def version_and_type(
    admin: AdminClient, name: str, version: str | None, input_type: str | None
) -> tuple[str, str]:
    """The version to deploy (default: the next integer one) and the input type (default:
    the model's registered one; a new model needs --input-type)."""
    versions = [info for info in admin.get_all_models(verbose=True) if info["model_name"] == name]
    input_type = input_type or next((v["input_type"] for v in versions), None)
    if input_type is None:
        raise InvalidRequest(f"model {name!r} is new: give its --input-type")
    return version or next_version(str(v["model_version"]) for v in versions), input_type


def next_version(versions: Iterable[str]) -> str:
    """One more than the highest integer version (1 for none)."""
    return str(max((int(v) for v in versions if v.isdigit()), default=0) + 1)


def print_progress(line: str) -> None:
    """A deploy's progress (environment builds), indented on stderr."""
    print(f"  {line}", file=sys.stderr, flush=True)


def deploy_function_file(
    admin: AdminClient,
    name: str,
    version: str,
    input_type: str,
    path: Path,
    function: str,
    *,
    environment: str | None = None,
    pkgs: Iterable[str] = (),
    num_replicas: int | None = None,
    **deploy_options: Any,
) -> Mapping[str, Any]:
    """Load `function` from `path` and deploy it as `name:version`; returns once its
    replicas are ready and it is current (its model info dict). `num_replicas` None:
    as many as the current version has. `deploy_options` go to `AdminClient.deploy_artifact`."""
    loaded = load_function(path, function)
    artifact = closure_artifact(
        loaded, environment=environment or "capture", pkgs_to_install=list(pkgs)
    )
    return admin.deploy_artifact(
        name, version, input_type, artifact, container_name="python-closure",
        num_replicas=num_replicas, progress=print_progress, **deploy_options,
    )  # fmt: skip
