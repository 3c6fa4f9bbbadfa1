"""Clusters started and stopped through `clipper_admin`, for the tests of that facade (and
of what is reached through it: its deployers, environments, the Ray placement). Every
other test starts its server with `configured_server` (tests/integration/cluster.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from tests.integration.cluster import free_port, kill_leftovers, wait_pids_exit


def admin_replica_pids(conn: ClipperConnection) -> set[int]:
    """Pids of every replica a `ClipperConnection`'s cluster reports (empty if unreachable)."""
    try:
        replicas = conn.get_all_model_replicas(verbose=True)
    except ClipperException:
        return set()
    return {replica["pid"] for replica in replicas if replica.get("pid")}


@contextlib.contextmanager
def admin_cluster(state_dir: Path, name: str) -> Iterator[ClipperConnection]:
    """A cluster started through `clipper_admin` on free ports; stopped (workers too) after."""
    manager = LocalContainerManager(
        cluster_name=name,
        clipper_query_port=free_port(),
        clipper_management_port=free_port(),
        clipper_rpc_port=free_port(),
        state_dir=state_dir,
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        yield conn
    finally:
        stop_admin_cluster(conn)


def stop_admin_cluster(conn: ClipperConnection) -> None:
    """Stop a `clipper_admin` cluster and make sure its server and workers are gone."""
    server_pid = conn.cm.pid
    pids = [*(admin_replica_pids(conn) if conn.connected else ()), *filter(None, [server_pid])]
    conn.stop_all()
    with contextlib.suppress(TimeoutError):
        wait_pids_exit(pids, 10, "a process of the cluster")
    kill_leftovers(pids)
