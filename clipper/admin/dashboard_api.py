"""The admin API's part for the web dashboard: its static files and two JSON endpoints.

- `GET /` and `GET /dashboard/...`: the dashboard's files (public: they hold no data; the
  page sends the admin token with every API call it makes);
- `GET|POST /admin/metrics_summary`: counters and histograms per app and model version
  (see clipper.admin.dashboard.summary);
- `GET|POST /admin/metrics_history`: the summaries the server took in the last minutes,
  oldest first (see clipper.admin.dashboard.history), so the page's charts start full;
- `GET|POST /admin/recent_errors`: replicas that failed, with their last error, and the
  newest warnings and errors of the server's log.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from clipper.admin.dashboard import STATIC_DIR
from clipper.admin.dashboard.history import SummaryHistory
from clipper.admin.dashboard.summary import SummarySource, metrics_summary
from clipper.control import rollouts
from clipper.control.service import ClusterService
from clipper.metrics.server_metrics import ServerMetrics

__all__ = ["PUBLIC_PATHS", "dashboard_routes", "log_problems", "replica_problems"]

PUBLIC_PATHS = ("/", "/dashboard/")
"""Paths (exact, or prefixes ending in '/') served without the admin token."""

LOG_TAIL_BYTES = 256 * 1024
MAX_LOG_PROBLEMS = 50
_NO_CACHE = {"cache-control": "no-cache"}
_LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([A-Z]+) ")
"""The start of a record of the server's log (clipper.server's format), with its level."""


def dashboard_routes(
    service: ClusterService,
    metrics: ServerMetrics,
    history: SummaryHistory | None = None,
    summary_source: SummarySource | None = None,
) -> list[BaseRoute]:
    """The routes to add to the admin app (`history`: an empty one when not given;
    `summary_source`: the summary when it is not `metrics`' alone, several frontends')."""
    if history is None:  # not `or`: an empty history is falsy
        history = SummaryHistory(1, 1.0)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_CACHE)

    async def summary(request: Request) -> Response:
        if summary_source is not None:
            return _json(await summary_source())
        return _json(metrics_summary(metrics))

    async def summary_history(request: Request) -> Response:
        return Response(history.to_json(), media_type="application/json", headers=_NO_CACHE)

    async def recent_errors(request: Request) -> Response:
        server_log = service.state_dir / "logs" / "server.log"
        return _json({
            "replicas": replica_problems(service),
            "log": await asyncio.to_thread(log_problems, server_log),  # file I/O off the loop
        })  # fmt: skip

    async def running_rollouts(request: Request) -> Response:
        return _json([rollouts.rollout_status(service, record.model)
                      for record in service.registry.running_rollouts()])  # fmt: skip

    return [
        Route("/", index, methods=["GET"]),
        Route("/admin/running_rollouts", running_rollouts, methods=["GET", "POST"]),
        Route("/admin/metrics_summary", summary, methods=["GET", "POST"]),
        Route("/admin/metrics_history", summary_history, methods=["GET", "POST"]),
        Route("/admin/recent_errors", recent_errors, methods=["GET", "POST"]),
        Mount("/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard"),
    ]


def replica_problems(service: ClusterService) -> list[dict[str, Any]]:
    """Replicas that are not serving, or that failed before: state, restarts, last error."""
    problems = []
    for replica_id in service.all_replicas():
        info = service.replica_info(replica_id)
        if info is None:
            continue
        if info["last_error"] or info["restarts"] or info["reason"] or not info["connected"]:
            problems.append(info)
    return problems


def log_problems(path: Path, limit: int = MAX_LOG_PROBLEMS) -> list[str]:
    """The newest WARNING, ERROR and CRITICAL lines of a log file (with what follows each,
    e.g. a traceback), oldest first."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, 2) - LOG_TAIL_BYTES))
            text = file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    entries: list[str] = []
    keep = False  # whether the record being read is a problem
    for line in text.splitlines():
        record = _LOG_RECORD.match(line)
        if record is not None:
            keep = record.group(1) in ("WARNING", "ERROR", "CRITICAL")
            if keep:
                entries.append(line)
        elif keep:  # a traceback or a message's further lines
            entries[-1] += "\n" + line
    return entries[-limit:]


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json", headers=_NO_CACHE)
