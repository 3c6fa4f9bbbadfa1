"""Who may register: a replica's one-time credential admits exactly that replica, once;
the cluster's secret admits only workers of containerless versions."""

from __future__ import annotations

from clipper.rpc.credentials import (
    CLUSTER_SECRET_FOR_EXTERNAL_ONLY,
    WRONG_CREDENTIAL,
    ReplicaCredentials,
)
from clipper.rpc.protocol import Register

EXTERNAL = {("ext", "1")}


def credentials() -> ReplicaCredentials:
    return ReplicaCredentials("cluster-secret", lambda model, version: (model, version) in EXTERNAL)


def register(model: str, version: str, replica: int, secret: str) -> Register:
    return Register(model, version, replica, "doubles", pid=1, secret=secret)


def test_a_credential_admits_its_replica_once() -> None:
    issued = credentials()
    token = issued.issue("m", "1", 0)

    assert issued.check(register("m", "1", 0, token)) is None
    assert issued.check(register("m", "1", 0, token)) == WRONG_CREDENTIAL  # used up


def test_a_credential_admits_no_other_replica() -> None:
    issued = credentials()
    token = issued.issue("m", "1", 0)

    for other in [register("m", "1", 7, token), register("n", "1", 0, token),
                  register("m", "2", 0, token)]:  # fmt: skip
        assert issued.check(other) == WRONG_CREDENTIAL
    assert issued.check(register("m", "1", 0, token)) is None  # still its own


def test_a_new_credential_voids_the_one_before() -> None:
    issued = credentials()
    first = issued.issue("m", "1", 0)
    second = issued.issue("m", "1", 0)

    assert issued.check(register("m", "1", 0, first)) == WRONG_CREDENTIAL
    assert issued.check(register("m", "1", 0, second)) is None


def test_the_cluster_secret_admits_only_workers_of_containerless_versions() -> None:
    issued = credentials()

    assert issued.check(register("ext", "1", 3, "cluster-secret")) is None
    assert issued.check(register("m", "1", 0, "cluster-secret")) == CLUSTER_SECRET_FOR_EXTERNAL_ONLY
    assert issued.check(register("ext", "1", 3, "")) == WRONG_CREDENTIAL
