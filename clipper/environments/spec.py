"""What a model needs to run: a Python version and a list of requirements (pure values)."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clipper.core.exceptions import InvalidRequest

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "Environment",
    "canonical_name",
    "merge_requirements",
    "parse_requirement",
    "requirement_name",
]


@dataclass(frozen=True, slots=True)
class Environment:
    """A model's runtime environment.

    `python_version` is the full version of the interpreter that built the model (only its
    major.minor is binding); `requirements` are pip requirement strings, sorted and
    deduplicated by package name. `source` says where they came from (`capture`, `list`,
    `file`) and is informational.
    """

    python_version: str
    requirements: tuple[str, ...] = ()
    source: str = "capture"

    @classmethod
    def create(
        cls, requirements: Iterable[str], *, python_version: str | None = None, source: str
    ) -> Environment:
        """An environment for `requirements`, on this interpreter's Python by default."""
        return cls(
            python_version or platform.python_version(),
            tuple(merge_requirements(requirements)),
            source,
        )

    @property
    def python_minor(self) -> str:
        """`"3.11"`: the part of the Python version that must match."""
        return ".".join(self.python_version.split(".")[:2])

    def key(self, extra_requirements: Sequence[str] = ()) -> str:
        """A short stable hash naming this environment (plus the worker's own requirements).

        Two models share a built environment exactly when their keys are equal.
        """
        canonical = {
            "python": self.python_minor,
            "requirements": sorted(self.requirements),
            "extra": sorted(extra_requirements),
        }
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The form stored in `clipper_model.json` under `environment`."""
        return {
            "python_version": self.python_version,
            "requirements": list(self.requirements),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Environment:
        """Parse the stored form; InvalidRequest when it is malformed."""
        python_version = value.get("python_version")
        requirements = value.get("requirements", [])
        if not isinstance(python_version, str) or not isinstance(requirements, list):
            raise InvalidRequest(f"malformed environment {dict(value)!r:.200}")
        if not all(isinstance(item, str) for item in requirements):
            raise InvalidRequest("environment requirements must be strings")
        source = str(value.get("source", "list"))
        return cls(python_version, tuple(merge_requirements(requirements)), source)


# packaging is imported on first use (about 40 ms): the server starts, and serves models
# deployed before, without parsing a requirement.
def parse_requirement(line: str) -> Requirement | None:
    """`line` as a requirement, or None when it is not one (a bare URL, a pip option)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def canonical_name(name: str) -> str:
    """A distribution's name as packaging normalises it (`Scikit_Learn` -> `scikit-learn`)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def requirement_name(requirement: str) -> str | None:
    """The canonical package name of a requirement string, or None (URLs, options)."""
    parsed = parse_requirement(requirement)
    return None if parsed is None else canonical_name(parsed.name)


def merge_requirements(*groups: Iterable[str]) -> list[str]:
    """Requirements from several groups, one per package: a later group's entry for a
    package replaces an earlier one's. Blank lines and comments are dropped; the result is
    sorted so that equal environments compare (and hash) equal."""
    by_name: dict[str, str] = {}
    for group in groups:
        for raw in group:
            requirement = raw.split(" #")[0].strip()
            if not requirement or requirement.startswith("#"):
                continue
            by_name[requirement_name(requirement) or requirement] = requirement
    return sorted(by_name.values(), key=str.lower)
