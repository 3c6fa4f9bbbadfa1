"""Clipper's `clipper_admin` API over this Clipper: manage a cluster from Python.

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer

conn = ClipperConnection(LocalContainerManager())
conn.start_clipper()
"""

from __future__ import annotations

from clipper_admin.clipper_admin import ClipperConnection
from clipper_admin.container_manager import ContainerManager, LocalContainerManager
from clipper_admin.exceptions import ClipperException, UnconnectedException
from clipper_admin.ray_container_manager import RayContainerManager

__all__ = [
    "ClipperConnection",
    "ClipperException",
    "ContainerManager",
    "LocalContainerManager",
    "RayContainerManager",
    "UnconnectedException",
]
