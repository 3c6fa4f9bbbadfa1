"""MLServer: `python mlserver_start.py MLSERVER_BIN WORKLOAD`. Trains and saves the sklearn
model (for the sklearn workloads; the custom runtimes build their own models), then becomes
`mlserver start .` (same process)."""

from __future__ import annotations

import os
import sys

import joblib
import peer_model

if __name__ == "__main__":
    if sys.argv[2] in ("sklearn", "sklearn-batch"):
        joblib.dump(peer_model.train_sklearn_model(), "models/bench/model.joblib")
    os.execv(sys.argv[1], [sys.argv[1], "start", "."])
