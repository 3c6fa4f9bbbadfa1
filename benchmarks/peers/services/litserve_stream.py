"""LitServe serving benchmarks.streaming_model's step model (clipper.models.char_lm) with
LitServe's own continuous batching (`ContinuousBatchingLoop`: `add_request`, `step`,
`has_capacity`, `has_active_requests`), streaming one JSON line per piece. Run in
LitServe's venv with the repository on PYTHONPATH:

    python benchmarks/peers/services/litserve_stream.py PORT MAX_BATCH_SIZE
"""

from __future__ import annotations

import json
import sys
from typing import Any

import litserve as ls
from litserve.loops.continuous_batching_loop import ContinuousBatchingLoop, Output
from litserve.utils import LitAPIStatus

from benchmarks.streaming_model import request_text, steps


class CharLMStream(ls.LitAPI):  # type: ignore[misc]
    """The step model behind LitServe's continuous batching loop."""

    def setup(self, device: str) -> None:
        self.model = steps()
        self.active: dict[str, Any] = {}  # uid -> the sequence's state

    def add_request(self, uid: str, request: Any) -> None:
        self.active[uid] = self.model.start(request_text(request["prompt"], request["seed"]))

    def step(self, prev_outputs: Any) -> list[Output]:
        uids = list(self.active)
        outputs = []
        results = self.model.step([self.active[uid] for uid in uids])
        for uid, (piece, done) in zip(uids, results, strict=True):
            outputs.append(Output(uid, piece, LitAPIStatus.OK))
            if done:
                outputs.append(Output(uid, "", LitAPIStatus.FINISH_STREAMING))
                del self.active[uid]
        return outputs

    def has_active_requests(self) -> bool:
        return bool(self.active)

    def has_capacity(self) -> bool:
        return len(self.active) < self.max_batch_size

    def encode_response(self, output: Any) -> dict[str, Any]:
        return {"piece": output}


def main() -> None:
    port, max_batch_size = int(sys.argv[1]), int(sys.argv[2])
    api = CharLMStream(max_batch_size=max_batch_size, stream=True, loop=ContinuousBatchingLoop())
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=120)
    print(json.dumps({"port": port}), flush=True)
    server.run(port=port, host="127.0.0.1", generate_client_file=False, num_api_servers=1)


if __name__ == "__main__":
    main()
