"""Does an interpreter satisfy an environment? (What is installed where, and what is not.)"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from clipper.environments.spec import Environment, canonical_name, parse_requirement

__all__ = ["InterpreterInfo", "probe_interpreter", "this_interpreter", "unmet_requirements"]

_PROBE = (
    "import importlib.metadata as m, json, platform, sys\n"
    "dists = {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}\n"
    "print(json.dumps({'python_version': platform.python_version(), 'distributions': dists}))\n"
)


@dataclass(frozen=True, slots=True)
class InterpreterInfo:
    """An interpreter's Python version and installed distributions (canonical names).

    With `lookup`, versions are looked up per package when asked (this process: fresh and
    cheap) instead of from `distributions`.
    """

    python_version: str
    distributions: Mapping[str, str] = field(default_factory=dict)
    lookup: Callable[[str], str | None] | None = None

    @property
    def python_minor(self) -> str:
        """`"3.11"`."""
        return ".".join(self.python_version.split(".")[:2])

    def version_of(self, name: str) -> str | None:
        """The installed version of distribution `name`, or None."""
        if self.lookup is not None:
            return self.lookup(name)
        return self.distributions.get(canonical_name(name))


def _canonical(distributions: Mapping[str, str]) -> dict[str, str]:
    return {canonical_name(name): version for name, version in distributions.items()}


def this_interpreter() -> InterpreterInfo:
    """The running interpreter; each package is looked up when asked, so packages
    installed since the start are seen."""
    return InterpreterInfo(platform.python_version(), lookup=_installed_version)


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def probe_interpreter(python: str) -> InterpreterInfo:
    """Another interpreter, asked in a subprocess."""
    if python == sys.executable:
        return this_interpreter()
    output = subprocess.run(
        [python, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    answer = json.loads(output)
    return InterpreterInfo(answer["python_version"], _canonical(answer["distributions"]))


def unmet_requirements(environment: Environment, info: InterpreterInfo) -> list[str]:
    """What `info` lacks to run `environment`, as readable reasons; empty when satisfied.

    A requirement that is not a plain `name[extras] specifier; marker` (a URL, a pip
    option) cannot be checked and counts as unmet.
    """
    from packaging.markers import default_environment  # on first use, as in spec.py

    reasons = []
    if environment.python_minor != info.python_minor:
        reasons.append(f"Python {environment.python_minor} (have {info.python_version})")
    marker_env: dict[str, str] = {
        **{key: str(value) for key, value in default_environment().items()},
        "python_full_version": info.python_version,
        "python_version": info.python_minor,
    }
    for line in environment.requirements:
        requirement = parse_requirement(line)
        if requirement is None:
            reasons.append(f"{line} (cannot be checked)")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(marker_env):
            continue
        installed = info.version_of(requirement.name)
        if installed is None:
            reasons.append(f"{line} (not installed)")
        elif not requirement.specifier.contains(installed, prereleases=True):
            reasons.append(f"{line} (have {installed})")
    return reasons
