"""Turning a deployer's `environment=` argument into an `Environment`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from clipper.core.exceptions import InvalidRequest
from clipper.environments.capture import distributions_of, read_requirements_file
from clipper.environments.spec import Environment, merge_requirements

__all__ = ["EnvironmentArg", "declare_environment"]

EnvironmentArg = str | os.PathLike[str] | Sequence[str] | Environment | None
"""`"capture"`, a requirements file, a list of requirement strings, an Environment, or
None (no requirements beyond `pkgs_to_install`)."""


def declare_environment(
    environment: EnvironmentArg,
    *,
    modules: Iterable[str] = (),
    pkgs_to_install: Sequence[str] = (),
) -> Environment:
    """The environment a deployer records.

    `"capture"` pins the installed versions of the distributions providing `modules` (what
    the model refers to); `pkgs_to_install` are added last and win over a captured or
    listed requirement for the same package.
    """
    extra = list(pkgs_to_install)
    if isinstance(environment, Environment):
        requirements = merge_requirements(environment.requirements, extra)
        return Environment(environment.python_version, tuple(requirements), environment.source)
    if environment is None:
        return Environment.create(extra, source="list")
    if isinstance(environment, str) and environment == "capture":
        captured = [f"{name}=={version}" for name, version in distributions_of(modules).items()]
        return Environment.create(merge_requirements(captured, extra), source="capture")
    if isinstance(environment, (str, os.PathLike)):
        path = Path(environment)
        if not path.is_file():
            raise InvalidRequest(
                f"environment={str(environment)!r} is neither 'capture' nor a requirements file"
            )
        return Environment.create(
            merge_requirements(read_requirements_file(path), extra), source="file"
        )
    if not all(isinstance(item, str) for item in environment):
        raise InvalidRequest("environment must be a list of requirement strings")
    return Environment.create(merge_requirements(environment, extra), source="list")
