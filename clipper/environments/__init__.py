"""Model environments: what a model needs (captured or declared), whether the server's
interpreter has it, and the cached virtual environments built when it does not."""

from __future__ import annotations

from clipper.environments.declare import EnvironmentArg, declare_environment
from clipper.environments.spec import Environment

__all__ = ["Environment", "EnvironmentArg", "declare_environment"]
