"""LitServe: `python litserve_service.py PORT WORKLOAD` next to peer_model.py. One LitAPI at
`/predict` ({"input": x} -> {"output": y}), one worker, one API server; LitServe's batching
(max_batch_size 32, batch_timeout 2 ms) on every workload but `sklearn` (batching off)."""

from __future__ import annotations

import sys
from typing import Any

import litserve as ls
import peer_model

MAX_BATCH_SIZE, BATCH_TIMEOUT_S = 32, 0.002


class BenchAPI(ls.LitAPI):
    """The workload's model over a batch (a list of inputs; one input where unbatched)."""

    def __init__(self, workload: str) -> None:
        batched = workload != "sklearn"
        super().__init__(max_batch_size=MAX_BATCH_SIZE if batched else 1,
                         batch_timeout=BATCH_TIMEOUT_S if batched else 0.0)  # fmt: skip
        self.workload = workload

    def setup(self, device: str) -> None:
        if self.workload == "cnn":
            network = peer_model.build_cnn(device)
            self.predict_batch = lambda batch: peer_model.predict_images(network, batch)
        elif self.workload == "text":
            model = peer_model.train_text_model()
            self.predict_batch = lambda batch: peer_model.predict_texts(model, batch)
        elif self.workload == "noop":
            self.predict_batch = lambda batch: list(batch)
        else:
            trained = peer_model.train_sklearn_model()
            self.predict_batch = lambda batch: peer_model.predict_rows(trained, batch)

    # No annotation: LitServe then reads the body as JSON (it builds its route from this one).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return request["input"]

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs  # the models take lists; LitServe's default would stack arrays

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def predict(self, x: Any) -> Any:
        if self.max_batch_size > 1:
            return self.predict_batch(x)
        return self.predict_batch([x])[0]

    def encode_response(self, output: Any) -> dict[str, Any]:
        return {"output": output}


def main(port: int, workload: str, device: str = "cpu") -> None:
    server = ls.LitServer(BenchAPI(workload), accelerator=device, workers_per_device=1)
    server.run(host="127.0.0.1", port=port, num_api_servers=1, log_level="warning",
               generate_client_file=False)  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:])
