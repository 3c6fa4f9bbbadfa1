"""What the framework builders share: the environment of a framework model."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence

from clipper.core.exceptions import InvalidRequest
from clipper.core.types import parse_input_type
from clipper.environments.capture import distributions_of
from clipper.environments.declare import EnvironmentArg, declare_environment
from clipper.environments.spec import Environment, merge_requirements

__all__ = ["framework_environment", "require_numeric"]


def framework_environment(
    environment: EnvironmentArg,
    modules: Iterable[str],
    frameworks: Mapping[str, str],
    pkgs_to_install: Sequence[str],
) -> Environment:
    """The environment of a framework model. With `"capture"`: the packages the pickled
    parts refer to plus the packages that load the model (`frameworks`, module name to
    distribution name), pinned where installed here and named bare where not."""
    if environment != "capture":
        return declare_environment(environment, pkgs_to_install=pkgs_to_install)
    pinned = distributions_of([*modules, *frameworks])
    captured = [f"{name}=={version}" for name, version in pinned.items()]
    bare = [dist for module, dist in frameworks.items() if importlib.util.find_spec(module) is None]
    return Environment.create(merge_requirements(bare, captured, pkgs_to_install), source="capture")


def require_numeric(input_type: str, what: str) -> None:
    """InvalidRequest unless `input_type` is one of the numeric types."""
    if not parse_input_type(input_type).is_numeric:
        raise InvalidRequest(
            f"{what} takes numeric inputs (ints, floats, doubles), not {input_type}"
        )
