"""The registry store: apps, model versions, links and events in one SQLite file.

Every method that changes anything runs in one `BEGIN IMMEDIATE` transaction, so a
failure leaves nothing half-written; every read, `snapshot()` included, runs in one read
transaction. One connection per `Registry`, guarded by a lock, so the event loop and a
worker thread may share it; other processes (or other `Registry` objects) on the same
directory see each other's committed changes through SQLite's WAL.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from clipper.control import registry_sql as q
from clipper.control import rollout_sql
from clipper.control.pipelines import check_pipeline, check_step_output
from clipper.control.schema import connect
from clipper.core.exceptions import (
    AlreadyExists,
    Conflict,
    InvalidRequest,
    ModelNotFound,
    NotFound,
)
from clipper.core.payload_config import PayloadLogConfig
from clipper.core.records import (
    OVERLOAD_MODES,
    PRIORITIES,
    AppRecord,
    ModelVersionRecord,
    RegistrySnapshot,
    RolloutRecord,
)
from clipper.core.types import parse_input_type, validate_name, validate_version

__all__ = ["Clock", "Registry", "check_overload", "check_priority"]

Clock = Callable[[], float]


class Registry:
    """Durable registry of Clipper's apps, model versions, links and events."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock = time.time) -> None:
        """Wrap an open, migrated autocommit connection; prefer `Registry.open`."""
        self._conn = conn
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path, *, clock: Clock = time.time) -> Registry:
        """Open (creating if needed) the registry in `<state_dir>/registry.db`.

        `clock` gives wall-clock seconds for `created_at` defaults and event times.
        """
        return cls(connect(state_dir), clock)

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- applications -------------------------------------------------------------------

    def add_app(self, record: AppRecord) -> bool:
        """Register an application; False (nothing changed) if exactly this one exists, so
        a script can run again; AlreadyExists naming what differs if another one does."""
        validate_name(record.name, "application name")
        parse_input_type(record.input_type)
        with self._write() as conn:
            existing = q.read_app(conn, record.name)
            if existing is not None:
                differences = _app_differences(existing, record)
                if not differences:
                    return False
                raise AlreadyExists(
                    f"Application '{record.name}' already exists with "
                    f"{'; '.join(differences)}: delete it first, or change it with the "
                    "set_app_* operations"
                )
            q.insert_app(conn, record)
        return True

    def delete_app(self, name: str) -> None:
        """Remove an application, its links, and itself from every query token's scope (a
        token scoped to it is for that app, not for a later one of the same name; a token
        left with no app is deleted); ApplicationNotFound if unknown."""
        with self._write() as conn:
            q.require_app(conn, name)
            conn.execute("DELETE FROM apps WHERE name = ?", (name,))
            q.unscope_query_tokens(conn, name)

    def get_app(self, name: str) -> AppRecord | None:
        """The application named `name`, or None."""
        with self._read() as conn:
            return q.read_app(conn, name)

    def list_apps(self) -> list[AppRecord]:
        """Every application, sorted by name."""
        with self._read() as conn:
            return q.read_apps(conn)

    def set_app_policy(self, name: str, policy: str, params: Mapping[str, object]) -> None:
        """Set an app's selection policy and its parameters.

        Switching to a different policy discards the persisted policy state, which only
        the old policy could read.
        """
        encoded = _encode_json(params, "Policy params")
        with self._write() as conn:
            q.require_app(conn, name)
            app = q.read_app(conn, name)
            if policy != "single" and app is not None and app.pipeline:
                raise Conflict(
                    f"Application '{name}' is a pipeline; its policy stays 'single' "
                    "(clear the pipeline first)"
                )
            conn.execute(
                "UPDATE apps SET policy_state = NULL WHERE name = ? AND policy != ?",
                (name, policy),
            )
            conn.execute(
                "UPDATE apps SET policy = ?, policy_params = ? WHERE name = ?",
                (policy, encoded, name),
            )

    def set_app_pipeline(self, name: str, models: list[str]) -> None:
        """Make the app a pipeline of `models` (each one's output the next one's input), or
        a plain app again when `models` is empty.

        Conflict when the types do not chain (see clipper.control.pipelines) or when the
        app has a selection policy other than `single`; ModelNotFound for unknown models.
        """
        with self._write() as conn:
            app_type = q.require_app(conn, name)
            app = q.read_app(conn, name)
            if models and app is not None and app.policy != "single":
                raise Conflict(
                    f"Application '{name}' has selection policy '{app.policy}'; set it to "
                    "'single' before making the app a pipeline"
                )
            check_pipeline(conn, name, app_type, models)
            conn.execute("UPDATE apps SET pipeline = ? WHERE name = ?", (json.dumps(models), name))

    def get_policy_params(self, app: str) -> dict[str, Any]:
        """The params last given to `set_app_policy` (empty if never set)."""
        params: dict[str, Any] = json.loads(self._app_column(app, "policy_params"))
        return params

    def get_policy_state(self, app: str) -> bytes | None:
        """The app's persisted selection-policy state, or None if none is stored."""
        state = self._app_column(app, "policy_state")
        return None if state is None else bytes(state)

    def set_policy_state(self, app: str, state: bytes) -> None:
        """Persist the app's selection-policy state."""
        with self._write() as conn:
            q.require_app(conn, app)
            conn.execute("UPDATE apps SET policy_state = ? WHERE name = ?", (state, app))

    # -- model versions -----------------------------------------------------------------

    def add_model_version(self, record: ModelVersionRecord, make_current: bool = True) -> None:
        """Register a model version and, by default, make it current (roll forward); else
        it is recorded as a pending deploy until it is made current (or deleted).

        AlreadyExists if the version exists; Conflict if the model's other versions take
        a different input type. `created_at` 0.0 means now.
        """
        name = validate_name(record.name, "model name")
        version = validate_version(record.version)
        input_type = parse_input_type(record.input_type).value
        _check_replicas(record.num_replicas, record.containerless, name, version)
        _check_batch_policy(record.batch_size, record.batch_wait_timeout_us, record.max_in_flight)
        if record.max_queued < 0:
            raise InvalidRequest("max_queued must be 0 (derived) or a positive integer")
        created_at = record.created_at or self._clock()
        record = dataclasses.replace(record, version=version, created_at=created_at)
        with self._write() as conn:
            if q.version_exists(conn, name, version):
                raise AlreadyExists(
                    f"Model version '{name}:{version}' already exists; deploy it as a new "
                    f"version (the next is {_next_version(conn, name)})"
                )
            existing = q.model_input_type(conn, name)
            if existing is not None and existing != input_type:
                raise Conflict(
                    f"Model '{name}' has input type '{existing}' but version '{version}' "
                    f"declares '{input_type}'; all versions of a model share one input type"
                )
            output_type = record.output_type
            check_step_output(conn, name, None if output_type is None else output_type.value)
            q.insert_version(conn, record)
            if make_current:
                q.switch_current(conn, name, version, self._clock())
            else:
                conn.execute(
                    "INSERT INTO pending_deploys (model_name, version) VALUES (?, ?)",
                    (name, version),
                )

    def next_version(self, name: str) -> str:
        """One more than the model's highest integer version ("1" for a new model)."""
        with self._read() as conn:
            return _next_version(conn, name)

    def delete_model_version(self, name: str, version: str) -> None:
        """Remove a version; ModelNotFound if unknown.

        If it was current, the model has no current version afterwards. When the last
        version of a model goes, every link to the model goes too.
        """
        with self._write() as conn:
            q.require_version(conn, name, version)
            conn.execute(
                "DELETE FROM model_versions WHERE name = ? AND version = ?", (name, version)
            )
            if q.model_input_type(conn, name) is None:
                conn.execute("DELETE FROM links WHERE model_name = ?", (name,))

    def get_model_version(self, name: str, version: str) -> ModelVersionRecord | None:
        """The version `name:version`, or None."""
        with self._read() as conn:
            return q.read_version(conn, name, version)

    def list_model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        """Versions of one model (or of all), ordered by name, then creation time."""
        with self._read() as conn:
            return q.read_versions(conn, name)

    def set_current_version(self, name: str, version: str) -> None:
        """Make `version` the model's current version (roll forward or back)."""
        with self._write() as conn:
            q.require_version(conn, name, version)
            q.switch_current(conn, name, version, self._clock())
            conn.execute(
                "DELETE FROM pending_deploys WHERE model_name = ? AND version = ?",
                (name, version),
            )

    def finish_deploy(self, name: str, version: str) -> None:
        """A deploy that leaves its version non-current (a rollout takes over) is done."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM pending_deploys WHERE model_name = ? AND version = ?",
                (name, version),
            )

    def pending_deploys(self) -> list[tuple[str, str]]:
        """(model, version) of each deploy that registered a version and did not finish."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT model_name, version FROM pending_deploys ORDER BY model_name, version"
            ).fetchall()
        return [(str(name), str(version)) for name, version in rows]

    def get_current_version(self, name: str) -> str | None:
        """The model's current version, or None (also for an unknown model)."""
        with self._read() as conn:
            return q.current_version(conn, name)

    def previous_current_version(self, name: str) -> str | None:
        """The most recently current version, other than the current one, still registered.

        Right after a switch this is the version that was current before it; deleted
        versions drop out of the history. None if there is no such version.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT version FROM current_version_history "
                "WHERE model_name = ? AND version IS NOT ? ORDER BY seq DESC LIMIT 1",
                (name, q.current_version(conn, name)),
            ).fetchone()
        return None if row is None else str(row[0])

    def set_num_replicas(self, name: str, version: str, n: int) -> None:
        """Set a version's target replica count.

        InvalidRequest if `n` is negative; Conflict if the version is containerless.
        """
        with self._write() as conn:
            record = q.require_version(conn, name, version)
            _check_replicas(n, record.containerless, name, version)
            conn.execute(
                "UPDATE model_versions SET num_replicas = ? WHERE name = ? AND version = ?",
                (n, name, version),
            )

    def set_autoscaling(self, name: str, version: str, config: Mapping[str, object] | None) -> None:
        """Store a version's autoscaling settings (None: turn autoscaling off).

        ModelNotFound for an unknown version; Conflict for a containerless one.
        """
        encoded = None if config is None else _encode_json(config, "Autoscaling settings")
        with self._write() as conn:
            record = q.require_version(conn, name, version)
            if encoded is None:
                conn.execute(
                    "DELETE FROM autoscaling WHERE model_name = ? AND version = ?", (name, version)
                )
                return
            if record.containerless:
                raise Conflict(
                    f"'{name}:{version}' is a containerless model: external workers serve "
                    "it, so it cannot be autoscaled"
                )
            conn.execute(
                "INSERT INTO autoscaling (model_name, version, config) VALUES (?, ?, ?) "
                "ON CONFLICT (model_name, version) DO UPDATE SET config = excluded.config",
                (name, version, encoded),
            )

    def autoscaling(self) -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any] | None]]:
        """Each autoscaled version's settings and last decision (None before the first)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT model_name, version, config, last_decision FROM autoscaling"
            ).fetchall()
        return {
            (str(name), str(version)): (json.loads(config), decision and json.loads(decision))
            for name, version, config, decision in rows
        }

    def record_autoscaled(
        self, name: str, version: str, num_replicas: int | None, decision: Mapping[str, object]
    ) -> None:
        """In one transaction: an autoscaler decision becomes the version's last decision
        and an `autoscaled` event, and its target becomes `num_replicas` (None: unchanged).
        Nothing changes if the version is no longer autoscaled (turned off meanwhile)."""
        encoded = _encode_json(decision, "Autoscaling decision")
        with self._write() as conn:
            record = q.require_version(conn, name, version)
            updated = conn.execute(
                "UPDATE autoscaling SET last_decision = ? WHERE model_name = ? AND version = ?",
                (encoded, name, version),
            )
            if updated.rowcount == 0:
                return
            if num_replicas is not None:
                _check_replicas(num_replicas, record.containerless, name, version)
                conn.execute(
                    "UPDATE model_versions SET num_replicas = ? WHERE name = ? AND version = ?",
                    (num_replicas, name, version),
                )
            conn.execute(
                "INSERT INTO events (ts, kind, detail) VALUES (?, 'autoscaled', ?)",
                (self._clock(), encoded),
            )

    def set_batch_policy(
        self,
        name: str,
        version: str,
        batch_size: int,
        batch_wait_timeout_us: int,
        max_in_flight: int,
    ) -> None:
        """Change how a version's queries are batched (takes effect on the next batch)."""
        _check_batch_policy(batch_size, batch_wait_timeout_us, max_in_flight)
        with self._write() as conn:
            q.require_version(conn, name, version)
            conn.execute(
                "UPDATE model_versions SET batch_size = ?, batch_wait_timeout_us = ?, "
                "max_in_flight = ? WHERE name = ? AND version = ?",
                (batch_size, batch_wait_timeout_us, max_in_flight, name, version),
            )

    def set_version_payload_log(
        self, name: str, version: str, config: PayloadLogConfig | None
    ) -> None:
        """Where a record of each query a version answered goes (clipper.payloads), or None."""
        with self._write() as conn:
            q.require_version(conn, name, version)
            conn.execute(
                "UPDATE model_versions SET payload_log = ? WHERE name = ? AND version = ?",
                (q.encode_payload_log(config), name, version),
            )

    def set_model_cache(self, name: str, enabled: bool) -> None:
        """Turn the prediction cache on or off for every version of a model."""
        with self._write() as conn:
            if q.model_input_type(conn, name) is None:
                raise ModelNotFound(f"No model with name '{name}'")
            conn.execute(
                "UPDATE model_versions SET cache_enabled = ? WHERE name = ?", (int(enabled), name)
            )

    def set_app_cache(self, name: str, enabled: bool) -> None:
        """Turn the prediction cache on or off for an application."""
        with self._write() as conn:
            q.require_app(conn, name)
            conn.execute("UPDATE apps SET cache_enabled = ? WHERE name = ?", (int(enabled), name))

    def update_app(
        self,
        name: str,
        latency_slo_us: int | None,
        default_output: str | None,
        priority: int | None = None,
    ) -> None:
        """Change an app's latency SLO, default output and priority class (None: keep it),
        in one transaction; ApplicationNotFound if unknown."""
        with self._write() as conn:
            q.require_app(conn, name)
            if priority is not None:
                check_priority(priority)
                conn.execute("UPDATE apps SET priority = ? WHERE name = ?", (priority, name))
            if latency_slo_us is not None:
                conn.execute(
                    "UPDATE apps SET latency_slo_us = ? WHERE name = ?", (latency_slo_us, name)
                )
            if default_output is not None:
                conn.execute(
                    "UPDATE apps SET default_output = ? WHERE name = ?", (default_output, name)
                )

    def set_app_show_model_errors(self, name: str, show: bool) -> None:
        """Whether an app's default answers carry its models' exception text."""
        with self._write() as conn:
            q.require_app(conn, name)
            conn.execute("UPDATE apps SET show_model_errors = ? WHERE name = ?", (int(show), name))

    def set_app_overload(self, name: str, overload: str) -> None:
        """What an app's queries refused by admission control get (`OVERLOAD_MODES`)."""
        check_overload(overload)
        with self._write() as conn:
            q.require_app(conn, name)
            conn.execute("UPDATE apps SET overload = ? WHERE name = ?", (overload, name))

    def set_app_payload_log(self, name: str, config: PayloadLogConfig | None) -> None:
        """Where a record of an app's queries goes (clipper.payloads), or None (off)."""
        with self._write() as conn:
            q.require_app(conn, name)
            conn.execute(
                "UPDATE apps SET payload_log = ? WHERE name = ?",
                (q.encode_payload_log(config), name),
            )

    # -- links --------------------------------------------------------------------------

    def add_links(self, app: str, model_names: list[str]) -> None:
        """Link models to an app; linking an already-linked model does nothing.

        ApplicationNotFound; ModelNotFound if no version of a model exists; Conflict if a
        model's input type differs from the app's. On any error nothing is linked.
        """
        with self._write() as conn:
            app_type = q.require_app(conn, app)
            for model in dict.fromkeys(model_names):
                model_type = q.model_input_type(conn, model)
                if model_type is None:
                    raise ModelNotFound(f"No model with name '{model}'")
                if model_type != app_type:
                    raise Conflict(
                        f"Model '{model}' takes input type '{model_type}' but application "
                        f"'{app}' takes '{app_type}'"
                    )
                conn.execute(
                    "INSERT OR IGNORE INTO links (app_name, model_name) VALUES (?, ?)",
                    (app, model),
                )

    def delete_links(self, app: str, model_names: list[str]) -> None:
        """Unlink models from an app; ModelNotFound if any of them is not linked."""
        with self._write() as conn:
            q.require_app(conn, app)
            for model in dict.fromkeys(model_names):
                deleted = conn.execute(
                    "DELETE FROM links WHERE app_name = ? AND model_name = ?", (app, model)
                )
                if deleted.rowcount == 0:
                    raise ModelNotFound(f"Model '{model}' is not linked to application '{app}'")

    def linked_models(self, app: str) -> list[str]:
        """Names of the models linked to an app, sorted; ApplicationNotFound if unknown."""
        with self._read() as conn:
            q.require_app(conn, app)
            return q.linked_models(conn, app)

    # -- canary rollouts (issue 23) -------------------------------------------------------

    def start_rollout(
        self, model: str, version: str, baseline: str, plan: Mapping[str, object]
    ) -> RolloutRecord:
        """Record a running rollout and its `rollout_started` event; Conflict if the model
        has one running, ModelNotFound for an unknown version."""
        encoded = _encode_json(plan, "Rollout plan")
        detail = _encode_json({"model": model, "version": version, "baseline": baseline,
                               "plan": plan}, "Rollout event")  # fmt: skip
        with self._write() as conn:
            record = rollout_sql.insert(conn, model, version, baseline, encoded, self._clock())
            conn.execute("INSERT INTO events (ts, kind, detail) VALUES (?, 'rollout_started', ?)",
                         (self._clock(), detail))  # fmt: skip
        return record

    def running_rollouts(self) -> list[RolloutRecord]:
        """Every running rollout."""
        with self._read() as conn:
            return rollout_sql.running(conn)

    def latest_rollout(self, model: str) -> RolloutRecord | None:
        """The model's running rollout, else its last one (None: it never had one)."""
        with self._read() as conn:
            return rollout_sql.latest(conn, model)

    def set_rollout_step(self, rollout_id: int, step: int) -> bool:
        """Move a running rollout to `step`, begun now; False if it is no longer running."""
        with self._write() as conn:
            return rollout_sql.set_step(conn, rollout_id, step, self._clock())

    def pause_rollout(self, record: RolloutRecord) -> bool:
        """Pause a running rollout with its `rollout_paused` event; False (and nothing
        changed) if it was paused already or no longer running."""
        return self._pause_or_resume(record, rollout_sql.pause, "rollout_paused")

    def resume_rollout(self, record: RolloutRecord) -> bool:
        """Resume a paused rollout with its `rollout_resumed` event (its step's time left
        kept); False (and nothing changed) if it was not paused."""
        return self._pause_or_resume(record, rollout_sql.resume, "rollout_resumed")

    def _pause_or_resume(
        self,
        record: RolloutRecord,
        change: Callable[[sqlite3.Connection, int, float], bool],
        kind: str,
    ) -> bool:
        encoded = _encode_json({"model": record.model, "version": record.version,
                                "baseline": record.baseline, "step": record.step + 1,
                                "by": "operator"}, "Rollout event")  # fmt: skip
        with self._write() as conn:
            if not change(conn, record.rollout_id, self._clock()):
                return False
            conn.execute("INSERT INTO events (ts, kind, detail) VALUES (?, ?, ?)",
                         (self._clock(), kind, encoded))  # fmt: skip
        return True

    def end_rollout(
        self, record: RolloutRecord, state: str, reason: str, detail: Mapping[str, object]
    ) -> bool:
        """End a running rollout in one transaction with its `rollout_<state>` event;
        `promoted` makes its version current (the baseline stays registered). False (and
        nothing changed) if it was no longer running."""
        encoded = _encode_json(detail, "Rollout event")
        with self._write() as conn:
            if not rollout_sql.end(conn, record.rollout_id, state, reason, self._clock()):
                return False
            if state == "promoted":
                q.switch_current(conn, record.model, record.version, self._clock())
            conn.execute("INSERT INTO events (ts, kind, detail) VALUES (?, ?, ?)",
                         (self._clock(), f"rollout_{state}", encoded))  # fmt: skip
        return True

    # -- events and snapshot ------------------------------------------------------------

    def record_event(self, kind: str, detail: Mapping[str, object]) -> None:
        """Append an event to the log; InvalidRequest if `detail` is not JSON-serialisable."""
        encoded = _encode_json(detail, "Event detail")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO events (ts, kind, detail) VALUES (?, ?, ?)",
                (self._clock(), kind, encoded),
            )

    def recent_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to `limit` events, newest first, each as `{"ts", "kind", "detail"}`."""
        if limit < 0:
            raise InvalidRequest(f"Event limit must be at least 0, got {limit}")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts, kind, detail FROM events ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [{"ts": ts, "kind": kind, "detail": json.loads(detail)} for ts, kind, detail in rows]

    def events_since(self, seq: int, limit: int = 100) -> list[dict[str, Any]]:
        """Up to `limit` events after sequence number `seq`, oldest first, each as
        `{"seq", "ts", "kind", "detail"}` (poll with the last `seq` seen)."""
        if limit < 0:
            raise InvalidRequest(f"Event limit must be at least 0, got {limit}")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, ts, kind, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [
            {"seq": seq, "ts": ts, "kind": kind, "detail": json.loads(detail)}
            for seq, ts, kind, detail in rows
        ]

    def last_event_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""
        with self._read() as conn:
            row = conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def data_version(self) -> int:
        """SQLite's `PRAGMA data_version`: it changes whenever another connection (another
        process's) commits a change, so a follower polls it to see when to reload; its own
        writes do not change it."""
        with self._read() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def snapshot(self) -> RegistrySnapshot:
        """Apps, versions, current versions and links, all read in one transaction.

        `links` has an entry, possibly empty, for every app.
        """
        with self._read() as conn:
            return q.read_snapshot(conn)

    # -- query tokens (issue 11) ----------------------------------------------------------

    def create_query_token(self, token_hash: str, apps: list[str], label: str = "") -> int:
        """Store a query token's SHA-256 (never the token) scoped to existing `apps`."""
        if not apps:
            raise InvalidRequest("a query token needs at least one app")
        with self._write() as conn:
            for app in apps:
                q.require_app(conn, app)
            return q.insert_query_token(conn, token_hash, sorted(set(apps)), label, self._clock())

    def query_tokens(self) -> list[dict[str, Any]]:
        """Every query token's id, apps, label and creation time (no hashes)."""
        with self._read() as conn:
            rows = q.read_query_tokens(conn)
        return [
            {"id": token_id, "apps": apps, "label": label, "created_at": created_at}
            for token_id, _, apps, label, created_at in rows
        ]

    def query_token_scopes(self) -> dict[str, list[str]]:
        """Each query token's hash with the apps it is scoped to."""
        with self._read() as conn:
            return {token_hash: apps for _, token_hash, apps, _, _ in q.read_query_tokens(conn)}

    def revoke_query_token(self, token_id: int) -> None:
        """Delete a query token; NotFound if there is none with that id."""
        with self._write() as conn:
            if not q.delete_query_token(conn, token_id):
                raise NotFound(f"No query token with id {token_id}")

    def set_app_query_auth(self, app: str, required: bool) -> None:
        """Make an app's queries require a query token (or not); ApplicationNotFound."""
        with self._write() as conn:
            q.require_app(conn, app)
            q.set_query_auth(conn, app, required)

    def query_auth_apps(self) -> set[str]:
        """The apps whose queries require a query token."""
        with self._read() as conn:
            return q.read_query_auth_apps(conn)

    # -- internals ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def _app_column(self, app: str, column: str) -> Any:
        with self._read() as conn:
            q.require_app(conn, app)
            return conn.execute(f"SELECT {column} FROM apps WHERE name = ?", (app,)).fetchone()[0]


def check_overload(overload: str) -> None:
    """Raise InvalidRequest unless `overload` is one of `OVERLOAD_MODES`."""
    if overload not in OVERLOAD_MODES:
        modes = " or ".join(repr(mode) for mode in OVERLOAD_MODES)
        raise InvalidRequest(f"overload must be {modes}, got {overload!r}")


def check_priority(priority: object) -> None:
    """Raise InvalidRequest unless `priority` is an integer class of `PRIORITIES`."""
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise InvalidRequest(
            f"priority must be an integer from {PRIORITIES[0]} to {PRIORITIES[-1]}, "
            f"got {priority!r}"
        )


def _check_batch_policy(batch_size: int, wait_timeout_us: int, max_in_flight: int) -> None:
    if batch_size == 0 or batch_size < -1:
        raise InvalidRequest("batch_size must be -1 (adaptive) or a positive integer")
    if wait_timeout_us < 0:
        raise InvalidRequest("batch_wait_timeout_micros must not be negative")
    if max_in_flight < 1:
        raise InvalidRequest("max_in_flight must be at least 1")


MAX_REPLICAS = 1024


def _check_replicas(n: int, containerless: bool, name: str, version: str) -> None:
    if n < 0:
        raise InvalidRequest(f"Number of replicas must be at least 0, got {n}")
    if n > MAX_REPLICAS:
        raise InvalidRequest(f"Number of replicas must be at most {MAX_REPLICAS}, got {n}")
    if containerless and n > 0:
        raise Conflict(
            f"'{name}:{version}' is a containerless model: external workers serve it, "
            "so it cannot have replicas"
        )


def _encode_json(value: Mapping[str, object], what: str) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{what} must be JSON-serialisable: {exc}") from exc


def _app_differences(existing: AppRecord, asked: AppRecord) -> list[str]:
    """What an app registered again asks differently (its policy only when it names one)."""
    differences = []
    pairs: list[tuple[str, object, object]] = [
        ("input_type", existing.input_type.value, asked.input_type.value),
        ("default_output", existing.default_output, asked.default_output),
        ("latency_slo_micros", existing.latency_slo_us, asked.latency_slo_us),
    ]
    if asked.show_model_errors:
        pairs.append(("show_model_errors", existing.show_model_errors, True))
    if asked.overload != "default":
        pairs.append(("overload", existing.overload, asked.overload))
    if asked.priority != 0:
        pairs.append(("priority", existing.priority, asked.priority))
    if asked.policy != "single" or asked.policy_params:
        pairs.append(("policy", existing.policy, asked.policy))
        pairs.append(("policy_params", dict(existing.policy_params), dict(asked.policy_params)))
    for field, have, want in pairs:
        if have != want:
            differences.append(f"{field} {have!r} (asked {want!r})")
    return differences


def _next_version(conn: sqlite3.Connection, name: str) -> str:
    rows = conn.execute("SELECT version FROM model_versions WHERE name = ?", (name,))
    numbers = [int(row[0]) for row in rows if str(row[0]).isdigit()]
    return str(max(numbers, default=0) + 1)
