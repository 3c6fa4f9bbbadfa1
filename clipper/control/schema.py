"""The registry's SQLite schema: connection settings and versioned migrations.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` holds the statements
that take a database from version `i` to version `i + 1`; to change the schema, append a
migration and never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clipper.core.exceptions import Conflict

__all__ = ["DB_FILENAME", "MIGRATIONS", "SCHEMA_VERSION", "connect", "migrate"]

DB_FILENAME = "registry.db"
BUSY_TIMEOUT_MS = 5000

_V1: tuple[str, ...] = (
    """CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        input_type TEXT NOT NULL,
        default_output TEXT NOT NULL,
        latency_slo_us INTEGER NOT NULL,
        policy TEXT NOT NULL,
        policy_params TEXT NOT NULL DEFAULT '{}',
        policy_state BLOB,
        cache_enabled INTEGER NOT NULL DEFAULT 1,
        pipeline TEXT NOT NULL DEFAULT '[]'
    )""",
    """CREATE TABLE model_versions (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        input_type TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '[]',
        container_name TEXT NOT NULL DEFAULT '',
        model_data_path TEXT NOT NULL DEFAULT '',
        batch_size INTEGER NOT NULL DEFAULT -1,
        num_replicas INTEGER NOT NULL DEFAULT 0,
        containerless INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        batch_wait_timeout_us INTEGER NOT NULL DEFAULT 0,
        max_in_flight INTEGER NOT NULL DEFAULT 1,
        cache_enabled INTEGER NOT NULL DEFAULT 1,
        signature TEXT,
        output_type TEXT,
        resources TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (name, version)
    )""",
    # At most one current version per model; the row goes when its version is deleted.
    """CREATE TABLE current_versions (
        model_name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        FOREIGN KEY (model_name, version)
            REFERENCES model_versions (name, version) ON DELETE CASCADE
    )""",
    # Every switch of a model's current version, oldest first (by seq).
    """CREATE TABLE current_version_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        model_name TEXT NOT NULL,
        version TEXT NOT NULL,
        switched_at REAL NOT NULL,
        FOREIGN KEY (model_name, version)
            REFERENCES model_versions (name, version) ON DELETE CASCADE
    )""",
    "CREATE INDEX current_version_history_by_model ON current_version_history (model_name, seq)",
    # A link names a model, not a version: a model exists while any of its versions does.
    """CREATE TABLE links (
        app_name TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
        model_name TEXT NOT NULL,
        PRIMARY KEY (app_name, model_name)
    )""",
    "CREATE INDEX links_by_model ON links (model_name)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)

# Issue 11: query tokens (stored as their SHA-256 only) and the apps that require one.
_V2: tuple[str, ...] = (
    """CREATE TABLE query_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash TEXT NOT NULL UNIQUE,
        apps TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    )""",
    # An app listed here answers queries only with a query token scoped to it.
    """CREATE TABLE app_query_auth (
        app_name TEXT PRIMARY KEY REFERENCES apps (name) ON DELETE CASCADE
    )""",
)

_V3 = (
    # A version registered by a deploy that has not finished (its replicas are starting):
    # a server that finds one at start rolls the deploy back (clipper.control.service).
    """CREATE TABLE pending_deploys (
        model_name TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (model_name, version),
        FOREIGN KEY (model_name, version)
            REFERENCES model_versions (name, version) ON DELETE CASCADE
    )""",
)

_V4 = (
    # Issue 28: a model's exception text reaches an app's clients only where this is set
    # (for development); by default they get its type and a reference into the server log.
    "ALTER TABLE apps ADD COLUMN show_model_errors INTEGER NOT NULL DEFAULT 0",
)

_V5 = (
    # Issue 22: a version's autoscaling settings (clipper.control.autoscaling_config, as
    # JSON) and the autoscaler's last decision (JSON, or NULL before the first); no row:
    # autoscaling is off. The row goes with its version.
    """CREATE TABLE autoscaling (
        model_name TEXT NOT NULL,
        version TEXT NOT NULL,
        config TEXT NOT NULL,
        last_decision TEXT,
        PRIMARY KEY (model_name, version),
        FOREIGN KEY (model_name, version)
            REFERENCES model_versions (name, version) ON DELETE CASCADE
    )""",
)

_V6 = (
    # Issue 22: admission control. What an app's refused queries get ("default": its
    # default output, "reject": 429 / RESOURCE_EXHAUSTED), and a version's queue bound
    # (0: derived from what its replicas can finish within the longest SLO).
    "ALTER TABLE apps ADD COLUMN overload TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE model_versions ADD COLUMN max_queued INTEGER NOT NULL DEFAULT 0",
)

_V7 = (
    # Issue 25: an app's payload log (clipper.core.payload_config, as JSON); NULL: off.
    "ALTER TABLE apps ADD COLUMN payload_log TEXT",
)

_V8 = (
    # Issue 23: canary rollouts. One row per rollout of a model's new version (`version`)
    # against the version current when it started (`baseline`), its plan (canonical JSON,
    # clipper.control.rollout_plan) and its step; `state` is running until it ends as
    # promoted, rolled_back or aborted (`reason` says why). At most one runs per model.
    """CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model_name TEXT NOT NULL,
        version TEXT NOT NULL,
        baseline TEXT NOT NULL,
        plan TEXT NOT NULL,
        step INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'running',
        reason TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        step_started_at REAL NOT NULL,
        ended_at REAL,
        FOREIGN KEY (model_name, version)
            REFERENCES model_versions (name, version) ON DELETE CASCADE,
        FOREIGN KEY (model_name, baseline)
            REFERENCES model_versions (name, version) ON DELETE CASCADE
    )""",
    "CREATE UNIQUE INDEX one_running_rollout ON rollouts (model_name) WHERE state = 'running'",
)

_V9 = (
    # Issue 23: a paused rollout (`paused_at`, NULL: not paused) keeps its split and its
    # step's time left; resuming moves `step_started_at` on by the time it was paused.
    "ALTER TABLE rollouts ADD COLUMN paused_at REAL",
)

_V10 = (
    # Issue 22: priorities. An app's priority class (clipper.core.records.PRIORITIES):
    # under contention its queries are served before, and shed after, lower classes'.
    "ALTER TABLE apps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
)

_V11 = (
    # Issue 25: a model version's payload log (clipper.core.payload_config, as JSON): a
    # record of every query the version answered, whichever app asked; NULL: off.
    "ALTER TABLE model_versions ADD COLUMN payload_log TEXT",
)

_V12 = (
    # Issue 24: a generative version's task (clipper.core.generation.TASKS: text-generation,
    # chat, embedding), which the OpenAI-compatible API serves; NULL: not generative.
    "ALTER TABLE model_versions ADD COLUMN task TEXT",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11, _V12,
)  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open `<state_dir>/registry.db` (creating the directory) with the registry's settings.

    The connection is in autocommit mode: callers open every transaction explicitly.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        state_dir / DB_FILENAME,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to `SCHEMA_VERSION` in one transaction.

    The version is re-read under the write lock, so two processes opening the same
    directory at once migrate it only once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _user_version(conn)
        if current > SCHEMA_VERSION:
            raise Conflict(
                f"registry schema version {current} is newer than this Clipper's "
                f"({SCHEMA_VERSION}); upgrade Clipper to open it"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])
