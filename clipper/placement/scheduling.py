"""Why a replica cannot be placed on a cluster's nodes now: pure functions, no Ray import.

The Ray placement reports the reason while a replica waits (`unschedulable_reason`), tells
the autoscaler how many more replicas the nodes' free resources hold (`free_capacity`),
and warns when workers on other machines could not dial a loopback RPC address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clipper.core.resources import DEFAULT_NUM_CPUS, ResourceRequest

__all__ = [
    "FreeCapacity",
    "NodeView",
    "free_capacity",
    "label_matches",
    "loopback_blind_nodes",
    "unschedulable_reason",
]


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node of a cluster as the scheduler sees it (`available` None when unknown)."""

    node_id: str
    address: str
    alive: bool
    total: Mapping[str, float]
    available: Mapping[str, float] | None = None
    labels: Mapping[str, str] | None = None


def unschedulable_reason(
    request: ResourceRequest,
    nodes: Iterable[NodeView],
    default_num_cpus: float = DEFAULT_NUM_CPUS,
) -> str | None:
    """Why no node can take a replica now, or None if some node could.

    Tells apart a request no node could ever hold (infeasible: wrong labels, an absent node,
    more than any node has) from one that waits for resources in use.
    """
    alive = [node for node in nodes if node.alive]
    if not alive:
        return "the Ray cluster has no alive node"
    wanted = request.amounts(default_num_cpus)
    candidates = [node for node in alive if _constraints_hold(request, node)]
    if not candidates:
        return _constraint_failure(request, alive)
    big_enough = [node for node in candidates if _covers(node.total, wanted)]
    if not big_enough:
        return (
            f"it asks for {_describe(wanted)} per replica, but no node of the Ray cluster "
            f"has that much ({_inventory(candidates, wanted, 'total')})"
        )
    known = [node for node in big_enough if node.available is not None]
    if len(known) < len(big_enough) or any(_covers(n.available or {}, wanted) for n in known):
        return None
    return (
        f"waiting for free resources: it asks for {_describe(wanted)} per replica and every "
        f"node that has that much is using it ({_inventory(known, wanted, 'available')} free)"
    )


@dataclass(frozen=True, slots=True)
class FreeCapacity:
    """How many more replicas of one request the nodes' free resources hold, and where."""

    replicas: int
    detail: str


def free_capacity(
    request: ResourceRequest,
    nodes: Iterable[NodeView],
    default_num_cpus: float = DEFAULT_NUM_CPUS,
) -> FreeCapacity | None:
    """How many more replicas of `request` fit on the alive nodes that may take it, from
    their free resources now; None when that is unknown (a node's free resources are not
    reported) or unbounded (the request reserves nothing)."""
    wanted = request.amounts(default_num_cpus)
    if not wanted:
        return None
    candidates = [n for n in nodes if n.alive and _constraints_hold(request, n)]
    if any(node.available is None for node in candidates):
        return None
    replicas = sum(_fits(node.available or {}, wanted) for node in candidates)
    free = _inventory(candidates, wanted, "available") if candidates else "no node may take it"
    return FreeCapacity(
        replicas, f"{replicas} more of {_describe(wanted)} fit in what is free ({free})"
    )


def label_matches(selector: str, value: str | None) -> bool:
    """Whether a node label `value` (None: absent) satisfies one Ray label selector value:
    `v`, `!v`, `in(a,b)` or `!in(a,b)`."""
    negated = selector.startswith("!")
    body = selector[1:] if negated else selector
    if body.startswith("in(") and body.endswith(")"):
        matched = value in {choice.strip() for choice in body[3:-1].split(",")}
    else:
        matched = value == body
    return matched != negated


def loopback_blind_nodes(rpc_host: str, nodes: Iterable[NodeView]) -> list[str]:
    """Addresses of alive nodes on other machines, when workers would dial a loopback
    `rpc_host` (which only reaches a listener on their own machine)."""
    if not _is_loopback(rpc_host):
        return []
    return [node.address for node in nodes if node.alive and not _is_loopback(node.address)]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# -- checks ---------------------------------------------------------------------------------


def _constraints_hold(request: ResourceRequest, node: NodeView) -> bool:
    if request.node_id and not request.node_affinity_soft and node.node_id != request.node_id:
        return False
    labels = node.labels or {}
    return all(label_matches(want, labels.get(key)) for key, want in request.label_selector)


def _constraint_failure(request: ResourceRequest, alive: list[NodeView]) -> str:
    if request.node_id and not any(node.node_id == request.node_id for node in alive):
        return f"node_id {request.node_id} is not an alive node of the Ray cluster"
    selector = ", ".join(f"{key}={value}" for key, value in request.label_selector)
    return f"no alive node of the Ray cluster has the labels {selector}"


def _covers(have: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    return all(have.get(name, 0.0) + 1e-9 >= amount for name, amount in wanted.items())


def _fits(have: Mapping[str, float], wanted: Mapping[str, float]) -> int:
    """How many times `wanted` fits in `have` (every amount in `wanted` is positive)."""
    return min(int(have.get(name, 0.0) / amount + 1e-9) for name, amount in wanted.items())


def _describe(amounts: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {_amount(name, value)}" for name, value in amounts.items())


def _inventory(nodes: list[NodeView], wanted: Mapping[str, float], which: str) -> str:
    parts = []
    for node in nodes:
        have = node.total if which == "total" else (node.available or {})
        parts.append(f"{node.address}: {_describe({n: have.get(n, 0.0) for n in wanted})}")
    return "; ".join(parts)


def _amount(name: str, value: float) -> str:
    if name == "memory":
        return f"{value / 2**30:.3g} GiB"
    return f"{value:g}"
