"""Clipper side by side with its peers (Ray Serve, MLServer, BentoML, TorchServe) and a bare
in-process baseline, on the same workloads and the same load generator.

Run: `.venv/bin/python -m benchmarks.peers` (see benchmarks/README.md).
"""
