"""Unit tests for clipper.core.resources: requests, Ray options, unschedulable reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.control.store import Registry
from clipper.core.exceptions import InvalidRequest
from clipper.core.records import ModelVersionRecord
from clipper.core.resources import ResourceRequest
from clipper.core.types import InputType
from clipper.placement.scheduling import (
    NodeView,
    free_capacity,
    label_matches,
    loopback_blind_nodes,
    unschedulable_reason,
)

GIB = 2**30


def node(
    address: str,
    total: dict[str, float],
    available: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
) -> NodeView:
    return NodeView(f"id{address[-1]}", address, True, total, available, labels)


# -- parsing --------------------------------------------------------------------------------


def test_a_full_request_round_trips_through_json() -> None:
    given = {
        "num_cpus": 2,
        "num_gpus": 0.5,
        "memory": 4 * GIB,
        "resources": {"slot": 1},
        "label_selector": {"zone": "a"},
        "node_id": "abc123",
        "node_affinity_soft": True,
    }

    request = ResourceRequest.parse(given)

    assert ResourceRequest.parse(request.to_dict()) == request
    assert request.to_dict()["resources"] == {"slot": 1.0}


@pytest.mark.parametrize("empty", [None, {}])
def test_no_request_is_the_default_and_shows_as_empty(empty: object) -> None:
    request = ResourceRequest.parse(empty)

    assert request == ResourceRequest()
    assert request.to_dict() == {}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"num_gpu": 1}, "unknown resource key(s) num_gpu"),
        ({"num_cpus": -1}, "must not be negative"),
        ({"num_cpus": True}, "must be a number"),
        ({"num_gpus": 1.5}, "above 1 must be a whole number"),
        ({"resources": {"GPU": 1}}, "ask for 'GPU' with 'num_gpus'"),
        ({"resources": {"slot": "one"}}, "must be a number"),
        ({"label_selector": {"zone": 1}}, "'label_selector' must map label names to strings"),
        ({"node_id": "not hex!"}, "must be a Ray node id"),
        ({"node_affinity_soft": "yes"}, "must be true or false"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_invalid_requests_name_the_problem(given: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        ResourceRequest.parse(given)


def test_actor_options_default_to_one_cpu_and_carry_custom_resources_and_labels() -> None:
    request = ResourceRequest.parse(
        {"num_gpus": 0.25, "resources": {"slot": 1}, "label_selector": {"zone": "a"}}
    )

    assert request.actor_options() == {
        "num_cpus": 1.0,
        "num_gpus": 0.25,
        "resources": {"slot": 1.0},
        "label_selector": {"zone": "a"},
    }


def test_amounts_leave_out_zeros_and_name_ray_resources() -> None:
    request = ResourceRequest.parse({"num_cpus": 0, "memory": GIB, "resources": {"slot": 2}})

    assert request.amounts() == {"memory": float(GIB), "slot": 2.0}


def test_the_registry_keeps_a_versions_resources(tmp_path: Path) -> None:
    request = ResourceRequest.parse({"num_gpus": 1, "resources": {"slot": 1}})
    record = ModelVersionRecord("m", "1", InputType.DOUBLES, resources=request)

    with Registry.open(tmp_path / "state") as registry:
        registry.add_model_version(record)
        stored = registry.get_model_version("m", "1")

    assert stored is not None
    assert stored.resources == request


# -- why a replica cannot be placed ---------------------------------------------------------


def test_a_gpu_request_on_a_cpu_cluster_is_infeasible_with_each_nodes_inventory() -> None:
    nodes = [node("127.0.0.2", {"CPU": 1}), node("127.0.0.3", {"CPU": 2})]

    reason = unschedulable_reason(ResourceRequest.parse({"num_gpus": 1}), nodes)

    assert reason == (
        "it asks for CPU 1, GPU 1 per replica, but no node of the Ray cluster has that much "
        "(127.0.0.2: CPU 1, GPU 0; 127.0.0.3: CPU 2, GPU 0)"
    )


def test_a_feasible_request_on_busy_nodes_waits_for_free_resources() -> None:
    nodes = [node("127.0.0.2", {"CPU": 1, "slot": 1}, available={"CPU": 1, "slot": 0})]

    reason = unschedulable_reason(ResourceRequest.parse({"resources": {"slot": 1}}), nodes)

    assert reason is not None
    assert reason.startswith("waiting for free resources: it asks for CPU 1, slot 1")
    assert "127.0.0.2: CPU 1, slot 0 free" in reason


@pytest.mark.parametrize("available", [{"CPU": 1, "slot": 1}, None])
def test_a_request_some_node_can_take_now_or_may_take_has_no_reason(
    available: dict[str, float] | None,
) -> None:
    nodes = [node("127.0.0.2", {"CPU": 1, "slot": 1}, available=available)]

    assert unschedulable_reason(ResourceRequest.parse({"resources": {"slot": 1}}), nodes) is None


def test_free_capacity_counts_the_replicas_each_node_still_holds() -> None:
    nodes = [
        node("127.0.0.2", {"CPU": 4, "slot": 3}, available={"CPU": 0.6, "slot": 3}),
        node("127.0.0.3", {"CPU": 4, "slot": 3}, available={"CPU": 4, "slot": 1}),
        node("127.0.0.4", {"CPU": 4}, available={"CPU": 4}, labels={"zone": "b"}),
    ]
    request = ResourceRequest.parse({"num_cpus": 0.3, "resources": {"slot": 1}})

    free = free_capacity(request, nodes)

    assert free is not None
    assert free.replicas == 3  # 2 on .2 (CPU 0.6), 1 on .3 (slot 1), none on .4 (no slot)
    assert free.detail.startswith("3 more of CPU 0.3, slot 1 fit in what is free (127.0.0.2:")
    labelled = ResourceRequest.parse({"num_cpus": 1, "label_selector": {"zone": "b"}})
    assert free_capacity(labelled, nodes) == free_capacity(labelled, nodes[2:])


def test_free_capacity_is_unknown_without_free_resources_or_a_reservation() -> None:
    nodes = [node("127.0.0.2", {"CPU": 1})]
    assert free_capacity(ResourceRequest.parse({"num_cpus": 1}), nodes) is None
    nothing = ResourceRequest.parse({"num_cpus": 0})
    assert free_capacity(nothing, [node("127.0.0.2", {}, {})]) is None


def test_labels_no_node_has_are_reported() -> None:
    nodes = [node("127.0.0.2", {"CPU": 4}, labels={"zone": "a"})]
    request = ResourceRequest.parse({"label_selector": {"zone": "b"}})

    assert unschedulable_reason(request, nodes) == (
        "no alive node of the Ray cluster has the labels zone=b"
    )


def test_hard_affinity_to_a_missing_node_is_reported_and_soft_affinity_is_not() -> None:
    nodes = [node("127.0.0.2", {"CPU": 4})]
    hard = ResourceRequest.parse({"node_id": "ff"})
    soft = ResourceRequest.parse({"node_id": "ff", "node_affinity_soft": True})

    assert unschedulable_reason(hard, nodes) == "node_id ff is not an alive node of the Ray cluster"
    assert unschedulable_reason(soft, nodes) is None


def test_a_cluster_without_alive_nodes_says_so() -> None:
    dead = NodeView("id", "127.0.0.2", alive=False, total={"CPU": 1})

    assert unschedulable_reason(ResourceRequest(), [dead]) == "the Ray cluster has no alive node"


@pytest.mark.parametrize(
    ("selector", "value", "matches"),
    [
        ("a", "a", True),
        ("a", None, False),
        ("!a", "b", True),
        ("!a", "a", False),
        ("in(a, b)", "b", True),
        ("!in(a,b)", "c", True),
        ("!in(a,b)", "a", False),
    ],
)
def test_label_selector_values(selector: str, value: str | None, matches: bool) -> None:
    assert label_matches(selector, value) is matches


def test_loopback_rpc_hosts_are_blind_only_to_nodes_on_other_machines() -> None:
    nodes = [node("127.0.0.2", {}), node("10.0.0.7", {})]

    assert loopback_blind_nodes("127.0.0.1", nodes) == ["10.0.0.7"]
    assert loopback_blind_nodes("10.0.0.5", nodes) == []
