"""The registry's SQL for canary rollouts (the `rollouts` table, schema v8). Each function
runs inside a transaction its caller (clipper.control.store.Registry) holds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from clipper.control import registry_sql as q
from clipper.core.exceptions import Conflict
from clipper.core.records import RolloutRecord

__all__ = ["END_STATES", "end", "insert", "latest", "pause", "resume", "running", "set_step"]

END_STATES = ("promoted", "rolled_back", "aborted")

_COLUMNS = (
    "id, model_name, version, baseline, plan, step, state, reason, started_at, "
    "step_started_at, ended_at, paused_at"
)


def insert(
    conn: sqlite3.Connection, model: str, version: str, baseline: str, plan: str, now: float
) -> RolloutRecord:
    """A running rollout; Conflict if the model has one already."""
    q.require_version(conn, model, version)
    q.require_version(conn, model, baseline)
    busy = conn.execute(
        "SELECT version FROM rollouts WHERE model_name = ? AND state = 'running'", (model,)
    ).fetchone()
    if busy is not None:
        raise Conflict(
            f"model {model} has a rollout of version {busy[0]} running: promote or abort it "
            "first (one rollout per model at a time)"
        )
    cursor = conn.execute(
        "INSERT INTO rollouts (model_name, version, baseline, plan, started_at, "
        "step_started_at) VALUES (?, ?, ?, ?, ?, ?)",
        (model, version, baseline, plan, now, now),
    )
    row = conn.execute(f"SELECT {_COLUMNS} FROM rollouts WHERE id = ?", (cursor.lastrowid,))
    return _record(row.fetchone())


def running(conn: sqlite3.Connection) -> list[RolloutRecord]:
    """Every running rollout, by model."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM rollouts WHERE state = 'running' ORDER BY model_name"
    ).fetchall()
    return [_record(row) for row in rows]


def latest(conn: sqlite3.Connection, model: str) -> RolloutRecord | None:
    """The model's running rollout, else its last one; None if it never had one."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM rollouts WHERE model_name = ? "
        "ORDER BY state = 'running' DESC, id DESC LIMIT 1",
        (model,),
    ).fetchone()
    return None if row is None else _record(row)


def set_step(conn: sqlite3.Connection, rollout_id: int, step: int, now: float) -> bool:
    """Move a running rollout to `step` (begun `now`); False if it is no longer running."""
    cursor = conn.execute(
        "UPDATE rollouts SET step = ?, step_started_at = ? WHERE id = ? AND state = 'running'",
        (step, now, rollout_id),
    )
    return cursor.rowcount == 1


def pause(conn: sqlite3.Connection, rollout_id: int, now: float) -> bool:
    """Pause a running rollout that is not paused; False if it was not."""
    cursor = conn.execute(
        "UPDATE rollouts SET paused_at = ? "
        "WHERE id = ? AND state = 'running' AND paused_at IS NULL",
        (now, rollout_id),
    )
    return cursor.rowcount == 1


def resume(conn: sqlite3.Connection, rollout_id: int, now: float) -> bool:
    """Resume a paused rollout: its step began later by the time it was paused (so its
    time left is what it had when paused); False if it was not paused."""
    cursor = conn.execute(
        "UPDATE rollouts SET step_started_at = step_started_at + MAX(0, ? - paused_at), "
        "paused_at = NULL WHERE id = ? AND state = 'running' AND paused_at IS NOT NULL",
        (now, rollout_id),
    )
    return cursor.rowcount == 1


def end(conn: sqlite3.Connection, rollout_id: int, state: str, reason: str, now: float) -> bool:
    """End a running rollout as `state`; False if it was no longer running."""
    if state not in END_STATES:
        raise ValueError(f"not an end state: {state}")
    cursor = conn.execute(
        "UPDATE rollouts SET state = ?, reason = ?, ended_at = ? "
        "WHERE id = ? AND state = 'running'",
        (state, reason, now, rollout_id),
    )
    return cursor.rowcount == 1


def _record(row: tuple[Any, ...]) -> RolloutRecord:
    plan: Mapping[str, Any] = json.loads(row[4])
    return RolloutRecord(int(row[0]), str(row[1]), str(row[2]), str(row[3]), plan,
                         int(row[5]), str(row[6]), str(row[7]), float(row[8]), float(row[9]),
                         None if row[10] is None else float(row[10]),
                         None if row[11] is None else float(row[11]))  # fmt: skip
