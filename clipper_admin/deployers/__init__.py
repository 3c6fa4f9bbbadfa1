"""Deployers: turn a Python function (and a framework model) into a deployed model version."""

from __future__ import annotations

__all__: list[str] = []
