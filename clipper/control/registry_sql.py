"""The SQL behind `clipper.control.store.Registry`.

Each function runs inside a transaction its caller holds and never commits. Functions
named `require_*` raise the domain's NotFound errors; the rest only read or write rows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from clipper.core.exceptions import ApplicationNotFound, ModelNotFound
from clipper.core.payload_config import PayloadLogConfig, parse_payload_log
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.resources import ResourceRequest
from clipper.core.types import parse_input_type

__all__ = [
    "current_version",
    "delete_query_token",
    "encode_payload_log",
    "insert_app",
    "insert_query_token",
    "insert_version",
    "linked_models",
    "model_input_type",
    "model_output_types",
    "read_app",
    "read_apps",
    "read_query_auth_apps",
    "read_query_tokens",
    "read_snapshot",
    "read_version",
    "read_versions",
    "require_app",
    "require_version",
    "set_query_auth",
    "switch_current",
    "version_exists",
]

_APP_COLUMNS = (
    "name, input_type, default_output, latency_slo_us, policy, cache_enabled, policy_params, "
    "pipeline, show_model_errors, overload, payload_log, priority"
)
_VERSION_COLUMNS = (
    "name, version, input_type, labels, container_name, model_data_path, "
    "batch_size, num_replicas, containerless, created_at, batch_wait_timeout_us, "
    "max_in_flight, cache_enabled, signature, output_type, resources, max_queued, payload_log, "
    "task"
)


def insert_app(conn: sqlite3.Connection, record: AppRecord) -> None:
    """Insert an app row; the caller has validated the record."""
    values = (
        record.name,
        parse_input_type(record.input_type).value,
        record.default_output,
        record.latency_slo_us,
        record.policy,
        int(record.cache_enabled),
        json.dumps(dict(record.policy_params), sort_keys=True),
        json.dumps(list(record.pipeline)),
        int(record.show_model_errors),
        record.overload,
        encode_payload_log(record.payload_log),
        record.priority,
    )
    placeholders = ", ".join("?" * len(values))
    conn.execute(f"INSERT INTO apps ({_APP_COLUMNS}) VALUES ({placeholders})", values)


def read_app(conn: sqlite3.Connection, name: str) -> AppRecord | None:
    """The app named `name`, or None."""
    row = conn.execute(f"SELECT {_APP_COLUMNS} FROM apps WHERE name = ?", (name,)).fetchone()
    return None if row is None else _app_from_row(row)


def read_apps(conn: sqlite3.Connection) -> list[AppRecord]:
    """Every app, sorted by name."""
    rows = conn.execute(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY name")
    return [_app_from_row(row) for row in rows]


def require_app(conn: sqlite3.Connection, name: str) -> str:
    """Return the app's input type, or raise ApplicationNotFound."""
    row = conn.execute("SELECT input_type FROM apps WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ApplicationNotFound(f"No application with name '{name}'")
    return str(row[0])


def insert_version(conn: sqlite3.Connection, record: ModelVersionRecord) -> None:
    """Insert a model-version row exactly as given (`created_at` included)."""
    values = (
        record.name,
        record.version,
        parse_input_type(record.input_type).value,
        json.dumps(list(record.labels)),
        record.container_name,
        record.model_data_path,
        record.batch_size,
        record.num_replicas,
        int(record.containerless),
        record.created_at,
        record.batch_wait_timeout_us,
        record.max_in_flight,
        int(record.cache_enabled),
        record.signature,
        None if record.output_type is None else parse_input_type(record.output_type).value,
        json.dumps(record.resources.to_dict()),
        record.max_queued,
        encode_payload_log(record.payload_log),
        record.task,
    )
    placeholders = ", ".join("?" * len(values))
    conn.execute(f"INSERT INTO model_versions ({_VERSION_COLUMNS}) VALUES ({placeholders})", values)


def read_version(conn: sqlite3.Connection, name: str, version: str) -> ModelVersionRecord | None:
    """The version `name:version`, or None."""
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE name = ? AND version = ?",
        (name, version),
    ).fetchone()
    return None if row is None else _version_from_row(row)


def read_versions(conn: sqlite3.Connection, name: str | None = None) -> list[ModelVersionRecord]:
    """Versions of one model (or of all), ordered by name, then creation time."""
    where, args = ("", ()) if name is None else (" WHERE name = ?", (name,))
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions{where} ORDER BY name, created_at, version",
        args,
    )
    return [_version_from_row(row) for row in rows]


def version_exists(conn: sqlite3.Connection, name: str, version: str) -> bool:
    """Whether `name:version` is registered."""
    row = conn.execute(
        "SELECT 1 FROM model_versions WHERE name = ? AND version = ?", (name, version)
    ).fetchone()
    return row is not None


def require_version(conn: sqlite3.Connection, name: str, version: str) -> ModelVersionRecord:
    """Return the version, or raise ModelNotFound naming the unknown model or version."""
    record = read_version(conn, name, version)
    if record is not None:
        return record
    if model_input_type(conn, name) is None:
        raise ModelNotFound(f"No model with name '{name}'")
    raise ModelNotFound(f"Model '{name}' has no version '{version}'")


def model_input_type(conn: sqlite3.Connection, name: str) -> str | None:
    """The input type shared by the model's versions, or None if it has no versions."""
    row = conn.execute(
        "SELECT input_type FROM model_versions WHERE name = ? LIMIT 1", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def model_output_types(conn: sqlite3.Connection, name: str) -> set[str | None]:
    """The output types declared by the model's versions (None: undeclared)."""
    rows = conn.execute("SELECT DISTINCT output_type FROM model_versions WHERE name = ?", (name,))
    return {None if row[0] is None else str(row[0]) for row in rows}


def current_version(conn: sqlite3.Connection, name: str) -> str | None:
    """The model's current version, or None."""
    row = conn.execute(
        "SELECT version FROM current_versions WHERE model_name = ?", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def switch_current(conn: sqlite3.Connection, name: str, version: str, switched_at: float) -> None:
    """Point the model at `version` and log the switch; no-op if it is already current."""
    if current_version(conn, name) == version:
        return
    conn.execute(
        "INSERT INTO current_versions (model_name, version) VALUES (?, ?) "
        "ON CONFLICT (model_name) DO UPDATE SET version = excluded.version",
        (name, version),
    )
    conn.execute(
        "INSERT INTO current_version_history (model_name, version, switched_at) VALUES (?, ?, ?)",
        (name, version, switched_at),
    )


def linked_models(conn: sqlite3.Connection, app: str) -> list[str]:
    """Names of the models linked to `app`, sorted."""
    rows = conn.execute(
        "SELECT model_name FROM links WHERE app_name = ? ORDER BY model_name", (app,)
    )
    return [str(row[0]) for row in rows]


def read_snapshot(conn: sqlite3.Connection) -> RegistrySnapshot:
    """Apps, versions, current versions and links; `links` has an entry for every app."""
    apps = read_apps(conn)
    current = conn.execute("SELECT model_name, version FROM current_versions")
    return RegistrySnapshot(
        apps={app.name: app for app in apps},
        versions={record.model_id: record for record in read_versions(conn)},
        current_versions={str(name): str(version) for name, version in current},
        links={app.name: tuple(linked_models(conn, app.name)) for app in apps},
        policy_states={
            str(name): bytes(state)
            for name, state in conn.execute(
                "SELECT name, policy_state FROM apps WHERE policy_state IS NOT NULL"
            )
        },
    )


def _app_from_row(row: tuple[Any, ...]) -> AppRecord:
    (name, input_type, default_output, latency_slo_us, policy, cache_enabled, params, pipeline,
     show_model_errors, overload, payload_log, priority) = row  # fmt: skip
    return AppRecord(
        name,
        parse_input_type(input_type),
        default_output,
        latency_slo_us,
        policy,
        bool(cache_enabled),
        json.loads(params),
        tuple(json.loads(pipeline)),
        bool(show_model_errors),
        overload,
        parse_payload_log(None if payload_log is None else json.loads(payload_log)),
        int(priority),
    )


def encode_payload_log(config: PayloadLogConfig | None) -> str | None:
    """An app's or a version's payload log as the registry stores it: JSON, or NULL (off)."""
    return None if config is None else json.dumps(config.to_dict())


def _version_from_row(row: tuple[Any, ...]) -> ModelVersionRecord:
    (name, version, input_type, labels, container, data_path, batch, replicas, bare, created,
     wait_us, in_flight, cache_enabled, signature, output_type, resources,
     max_queued, payload_log, task) = row  # fmt: skip
    return ModelVersionRecord(
        name=name,
        version=version,
        input_type=parse_input_type(input_type),
        labels=tuple(json.loads(labels)),
        container_name=container,
        model_data_path=data_path,
        batch_size=batch,
        num_replicas=replicas,
        containerless=bool(bare),
        created_at=created,
        batch_wait_timeout_us=wait_us,
        max_in_flight=in_flight,
        cache_enabled=bool(cache_enabled),
        signature=signature,
        output_type=None if output_type is None else parse_input_type(output_type),
        resources=ResourceRequest.parse(json.loads(resources)),
        max_queued=max_queued,
        payload_log=parse_payload_log(None if payload_log is None else json.loads(payload_log)),
        task=task,
    )


# -- query tokens (issue 11) -------------------------------------------------------------


def insert_query_token(
    conn: sqlite3.Connection, token_hash: str, apps: list[str], label: str, created_at: float
) -> int:
    """Store a token's hash and scope; returns its id."""
    cursor = conn.execute(
        "INSERT INTO query_tokens (token_hash, apps, label, created_at) VALUES (?, ?, ?, ?)",
        (token_hash, json.dumps(apps), label, created_at),
    )
    return int(cursor.lastrowid or 0)


def read_query_tokens(conn: sqlite3.Connection) -> list[tuple[int, str, list[str], str, float]]:
    """Every query token as (id, hash, apps, label, created_at), oldest first."""
    rows = conn.execute(
        "SELECT id, token_hash, apps, label, created_at FROM query_tokens ORDER BY id"
    ).fetchall()
    return [(row[0], row[1], json.loads(row[2]), row[3], row[4]) for row in rows]


def unscope_query_tokens(conn: sqlite3.Connection, app: str) -> None:
    """Take `app` out of every token's scope; delete the tokens left with none."""
    for token_id, _, apps, _, _ in read_query_tokens(conn):
        if app not in apps:
            continue
        left = [name for name in apps if name != app]
        if left:
            conn.execute(
                "UPDATE query_tokens SET apps = ? WHERE id = ?", (json.dumps(left), token_id)
            )
        else:
            delete_query_token(conn, token_id)


def delete_query_token(conn: sqlite3.Connection, token_id: int) -> bool:
    """Remove a token; whether it existed."""
    return conn.execute("DELETE FROM query_tokens WHERE id = ?", (token_id,)).rowcount > 0


def set_query_auth(conn: sqlite3.Connection, app: str, required: bool) -> None:
    """Mark or unmark an (existing) app as requiring a query token."""
    if required:
        conn.execute("INSERT OR IGNORE INTO app_query_auth (app_name) VALUES (?)", (app,))
    else:
        conn.execute("DELETE FROM app_query_auth WHERE app_name = ?", (app,))


def read_query_auth_apps(conn: sqlite3.Connection) -> set[str]:
    """The apps that require a query token."""
    return {row[0] for row in conn.execute("SELECT app_name FROM app_query_auth")}
