"""Regenerate the committed gRPC modules of the Open Inference Protocol.

    python scripts/generate_grpc_stubs.py      (needs grpcio-tools)

Writes grpc_predict_v2_pb2.py, .pyi and _pb2_grpc.py beside the .proto, then moves the
messages into a descriptor pool of their own: tritonclient registers the same `inference`
names in protobuf's default pool, and both must load in one process (the tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("clipper/frontend/oip/grpc/grpc_predict_v2.proto")
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def main() -> int:
    """Run protoc, then patch the pool."""
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--pyi_out=.",
         "--grpc_python_out=.", str(PROTO)],
        cwd=ROOT, check=True,
    )  # fmt: skip
    module = ROOT / PROTO.with_name("grpc_predict_v2_pb2.py")
    text = module.read_text()
    if DEFAULT_POOL not in text:
        print(f"{module}: no default-pool registration found", file=sys.stderr)
        return 1
    module.write_text(text.replace(DEFAULT_POOL, PRIVATE_POOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
