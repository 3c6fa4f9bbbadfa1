"""Artifact builders, one module per kind of model: pure packing, no server.

`clipper_admin.deployers` wraps each in Clipper's `deploy_*` functions.
"""

from __future__ import annotations

__all__: list[str] = []
