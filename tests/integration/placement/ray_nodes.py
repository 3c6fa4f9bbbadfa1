"""A local multi-node Ray cluster for tests: `python -m tests.integration.placement.ray_nodes`.

Runs `ray.cluster_utils.Cluster` in its own process (and session), so Ray's process-group
handling, environment and temp files stay away from pytest's. One JSON command per line
on stdin, one JSON answer per line on stdout:

    {"op": "head", "ip": "127.0.0.2", "resources": {...}}  -> {"address": ..., "node_id": ...}
    {"op": "add", "ip": "127.0.0.3", "resources": {...}}   -> {"node": i, "node_id": ...}
    {"op": "remove", "node": i}                            -> {"removed": i}
    {"op": "shutdown"}                                     -> {"shutdown": true}

`remove` is abrupt (SIGKILL of the node's processes), as when a machine is lost.

Errors answer {"error": "..."}. End of input shuts the cluster down too.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from ray.cluster_utils import Cluster


def main() -> None:
    """Serve commands until `shutdown` or end of input."""
    cluster: Cluster | None = None
    nodes: dict[int, Any] = {}
    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                answer, cluster = _run(command, cluster, nodes)
            except Exception:
                answer = {"error": traceback.format_exc()}
            print(json.dumps(answer), flush=True)
            if command["op"] == "shutdown":
                return
    finally:
        if cluster is not None:
            cluster.shutdown()


def _node_args(command: dict[str, Any]) -> dict[str, Any]:
    return {
        "node_ip_address": command["ip"],
        "num_cpus": command.get("num_cpus", 1),
        "resources": command.get("resources", {}),
        "object_store_memory": 80 * 1024 * 1024,
    }


def _run(
    command: dict[str, Any], cluster: Cluster | None, nodes: dict[int, Any]
) -> tuple[dict[str, Any], Cluster | None]:
    op = command["op"]
    if op == "head":
        args = {**_node_args(command), "include_dashboard": False}
        if command.get("system_config"):
            args["_system_config"] = command["system_config"]
        cluster = Cluster(initialize_head=True, head_node_args=args)
        nodes[0] = cluster.head_node
        return {"address": cluster.address, "node_id": cluster.head_node.node_id}, cluster
    if cluster is None:
        raise RuntimeError("start the head first")
    if op == "add":
        node = cluster.add_node(**_node_args(command))
        index = max(nodes) + 1
        nodes[index] = node
        return {"node": index, "node_id": node.node_id}, cluster
    if op == "remove":
        cluster.remove_node(nodes.pop(command["node"]), allow_graceful=False)
        return {"removed": command["node"]}, cluster
    if op == "shutdown":
        cluster.shutdown()
        return {"shutdown": True}, None
    raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    main()
