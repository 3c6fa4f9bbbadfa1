"""Several query frontends per machine (`Settings.frontends` > 1, issue 26).

One control process (`clipper.server`: admin API, dashboard, reconciler, registry writes,
placement) and N frontend processes (`python -m clipper.frontends`, `process.py`), each
binding the query and gRPC ports with SO_REUSEPORT so the kernel spreads connections over
them, each with its own data plane (batching, cache, selection policies) and its own
`/metrics` registry. Every replica serves every frontend (`clipper.rpc.fanout`,
`clipper.worker.fanout`). A frontend follows the registry by polling SQLite's
`data_version` every `FOLLOW_INTERVAL_S` (`follower.py`), so an admin change reaches every
frontend within that time plus one snapshot read. The control process restarts a frontend
that exits at once (`supervisor.py`) and merges the frontends' metrics (`metrics_merge.py`)
over their peer sockets (`peer.py`), which also carry feedback to the frontend that answered
the query (a query id says which: frontend i of N numbers its answers i+1, i+1+N, ...).

This package sits beside `clipper.server`, above the layers it composes.
"""

from __future__ import annotations

__all__: list[str] = []
