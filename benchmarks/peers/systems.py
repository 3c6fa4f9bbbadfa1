"""The systems the benchmark knows, by name."""

from __future__ import annotations

from benchmarks.peers.bare import Bare
from benchmarks.peers.bentoml import BentoML
from benchmarks.peers.clipper import Clipper
from benchmarks.peers.litserve import LitServe
from benchmarks.peers.mlserver import MLServer
from benchmarks.peers.rayserve import RayServe, RayServeDefault
from benchmarks.peers.system import System
from benchmarks.peers.torchserve import TorchServe
from benchmarks.peers.triton import Triton

__all__ = ["SYSTEMS"]

SYSTEMS: dict[str, type[System]] = {
    "clipper": Clipper,
    "bare": Bare,
    "rayserve": RayServe,
    "rayserve-default": RayServeDefault,
    "mlserver": MLServer,
    "bentoml": BentoML,
    "torchserve": TorchServe,
    "triton": Triton,
    "litserve": LitServe,
}
