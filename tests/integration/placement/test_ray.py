"""The Ray placement against a real local Ray cluster of several nodes (127.0.0.x addresses).

One Ray cluster and one Clipper server (`RayContainerManager`) are shared by the module:
the head node (127.0.0.2) and a worker node (127.0.0.3) each hold one `slot`, and the
`whoami` model asks for one slot per replica, so its two replicas land one per node. The
node-loss test then kills 127.0.0.3 and adds 127.0.0.4 in its place; the autoscaling test
adds 127.0.0.5, which holds two replicas of its model. Only the processes these tests start
are stopped (the nodes' own session, the server, its workers).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.steady_load import SteadyLoad
from clipper.artifacts.python import closure_artifact
from clipper_admin import ClipperConnection, ClipperException, RayContainerManager
from clipper_admin.deployers import python as python_deployer
from tests.integration.clipper_admin_cluster import stop_admin_cluster
from tests.integration.cluster import free_port, wait_until
from tests.integration.placement.ray_cluster import LocalRayCluster, local_ray_cluster
from tests.integration.rollout.versions import answers, raises_on_tenth

pytestmark = [
    pytest.mark.integration,
    pytest.mark.ray,
    pytest.mark.timeout(240),
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs clipper[ray]"),
]

HEAD_IP, NODE_IP, REPLACEMENT_IP, AUTO_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
SLOT = {"slot": 1.0}
RECOVERY_S = 30.0
_query_numbers = itertools.count()


@dataclass
class RayClipper:
    """The module's Ray cluster and the Clipper server placing replicas on it."""

    ray: LocalRayCluster
    conn: ClipperConnection
    query_url: str
    nodes: dict[str, int] = field(default_factory=dict)
    """Worker nodes by address, as indexes for `LocalRayCluster.remove_node`."""

    def replicas(self, model: str) -> list[dict[str, Any]]:
        found = self.conn.get_all_model_replicas(verbose=True)
        return [info for info in found if info["model_name"] == model]

    def predict(self, app: str, client: httpx.Client) -> dict[str, Any]:
        body = {"input": [float(next(_query_numbers))]}  # distinct: no cache hit, no coalescing
        reply = client.post(f"{self.query_url}/{app}/predict", json=body, timeout=10)
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer


@pytest.fixture(scope="module")
def ray_clipper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayClipper]:
    with local_ray_cluster() as ray_cluster, pytest.MonkeyPatch.context() as env:
        ray_cluster.start_head(HEAD_IP, SLOT)
        node, _ = ray_cluster.add_node(NODE_IP, SLOT)
        for name, value in ray_cluster.env.items():  # the server's Ray client needs them
            env.setenv(name, value)
        env.setenv("CLIPPER_GRPC_PORT", str(free_port()))
        env.setenv("CLIPPER_AUTOSCALER_INTERVAL_S", "0.25")
        manager = RayContainerManager(
            address=ray_cluster.address,
            cluster_name="ray-test",
            clipper_query_port=free_port(),
            clipper_management_port=free_port(),
            clipper_rpc_port=free_port(),
            state_dir=tmp_path_factory.mktemp("ray") / "state",
        )
        conn = ClipperConnection(manager)
        conn.start_clipper(timeout_s=60)
        try:
            yield RayClipper(
                ray_cluster, conn, f"http://{manager.get_query_addr()}", {NODE_IP: node}
            )
        finally:
            stop_admin_cluster(conn)


@pytest.fixture(scope="module")
def whoami(ray_clipper: RayClipper) -> str:
    """An app whose model answers with its worker's pid: two replicas, one slot each."""

    def worker_pid(inputs: list[Any]) -> list[int]:
        time.sleep(0.01)
        return [os.getpid() for _ in inputs]

    conn = ray_clipper.conn
    conn.register_application("whoami", "doubles", "-1", 2_000_000)
    python_deployer.deploy_python_closure(
        conn, "whoami", 1, "doubles", worker_pid, num_replicas=2, batch_size=1,
        resources={"num_cpus": 0.5, "resources": SLOT},
    )  # fmt: skip
    conn.link_model_to_app("whoami", "whoami")
    conn._admin_api().set_cache(False, model_name="whoami")  # it answers pids
    return "whoami"


def answering_pids(ray_clipper: RayClipper, app: str, queries: int = 80) -> set[int]:
    """Pids that answered `queries` concurrent queries (non-default answers only)."""
    with httpx.Client() as client, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: ray_clipper.predict(app, client), range(queries)))
    return {answer["output"] for answer in answers if not answer["default"]}


def test_replicas_on_both_nodes_answer_queries(ray_clipper: RayClipper, whoami: str) -> None:
    replicas = ray_clipper.replicas(whoami)
    node_of_pid = {info["pid"]: info["node"] for info in replicas}

    pids = answering_pids(ray_clipper, whoami)

    assert {node_of_pid[pid] for pid in pids} == {HEAD_IP, NODE_IP}
    assert all(info["state"] == "ready" and info["node_id"] for info in replicas)
    info = ray_clipper.conn.get_model_info(whoami, 1)
    assert info is not None
    assert info["resources"] == {"num_cpus": 0.5, "resources": SLOT}


def test_a_rollout_on_ray_is_promoted_and_a_bad_one_rolled_back(ray_clipper: RayClipper) -> None:
    admin = ray_clipper.conn._admin_api()
    cpu = {"num_cpus": 0.1}  # beside whoami's half CPU on each node
    admin.add_app("canary", "doubles", default_output="-1", latency_slo_micros=2_000_000)
    admin.upload_artifact("canary", "1", closure_artifact(answers(1.0)))
    admin.add_model("canary", "1", "doubles", num_replicas=1, resources=cpu)
    admin.add_model_links("canary", ["canary"])
    admin.wait_model_ready("canary", "1")
    plan = {"shadow_s": 0, "steps": [0.5, 1.0], "step_s": 1.5, "min_queries": 10,
            "checks": {"max_p50_ratio": None, "max_p99_ratio": None}}  # fmt: skip

    def roll_out(version: str, func: Any, step_s: float) -> dict[str, Any]:
        admin.upload_artifact("canary", version, closure_artifact(func))
        admin.add_model("canary", version, "doubles", num_replicas=1, resources=cpu,
                        rollout={**plan, "step_s": step_s})  # fmt: skip
        placed = {info["node"] for info in ray_clipper.replicas("canary")
                  if info["model_version"] == version}  # fmt: skip
        assert placed, ray_clipper.replicas("canary")
        assert placed <= {HEAD_IP, NODE_IP}, placed  # on a node of the Ray cluster
        return wait_until(lambda: ended(ray_clipper, "canary"), 20, f"version {version}'s end")

    with SteadyLoad(ray_clipper.query_url, "canary", threads=4) as load:
        promoted = roll_out("2", answers(2.0), 1.5)
        rolled_back = roll_out("3", raises_on_tenth(3.0), 5.0)
    assert promoted["state"] == "promoted", promoted
    assert rolled_back["state"] == "rolled_back", rolled_back
    assert "max_error_rate: new version error_rate" in rolled_back["reason"]
    assert load.failures == []
    assert min(load.outputs[2.0], load.outputs[3.0]) > 0, load.outputs
    assert ray_clipper.conn.get_current_model_version("canary") == "2"


def ended(ray_clipper: RayClipper, model: str) -> dict[str, Any] | None:
    """The model's latest rollout once it ended (None while it runs)."""
    status = ray_clipper.conn.get_rollout(model)
    return status if status is not None and status["state"] != "running" else None


@dataclass
class QueryLoad:
    """Clients querying an app until stopped, recording (send time, answer) pairs."""

    ray_clipper: RayClipper
    app: str
    answers: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, deadline: float) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    self.answers.append((sent, self.ray_clipper.predict(self.app, client)))
                except (AssertionError, httpx.HTTPError) as exc:  # no answer: the test fails
                    self.failures.append(exc)


def test_lost_node_replicas_come_back_and_queries_keep_answering(
    ray_clipper: RayClipper, whoami: str
) -> None:
    load = QueryLoad(ray_clipper, whoami)
    clients = [threading.Thread(target=load.run, args=(time.monotonic() + 150,)) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: len(load.answers) > 20, 30, "queries to flow")
        lost_at = time.monotonic()
        ray_clipper.ray.remove_node(ray_clipper.nodes.pop(NODE_IP))
        node, _ = ray_clipper.ray.add_node(REPLACEMENT_IP, SLOT)
        ray_clipper.nodes[REPLACEMENT_IP] = node
        wait_until(
            lambda: any(
                info["node"] == REPLACEMENT_IP and info["state"] == "ready"
                for info in ray_clipper.replicas(whoami)
            ),
            120,
            "the lost replica to come back on the new node",
            interval_s=0.5,
        )
        recovered_s = time.monotonic() - lost_at
        time.sleep(1.0)
    finally:
        load.stop.set()
        for client in clients:
            client.join(30)

    assert not load.failures
    after_loss = [(sent - lost_at, answer) for sent, answer in load.answers if sent >= lost_at]
    defaults = [answer for _, answer in after_loss if answer["default"]]
    print(f"{len(after_loss)} answers after the node loss, {len(defaults)} defaults; "
          f"replica back on the new node after {recovered_s:.1f} s")  # fmt: skip
    assert all(answer.get("default_explanation") for answer in defaults)
    assert not [answer for late, answer in after_loss if late > RECOVERY_S and answer["default"]]
    assert any(not answer["default"] for _, answer in after_loss)
    replicas = ray_clipper.replicas(whoami)
    assert {info["node"] for info in replicas} == {HEAD_IP, REPLACEMENT_IP}
    lost = next(info for info in replicas if info["node"] == REPLACEMENT_IP)
    assert lost["restarts"] >= 1
    assert "node has died" in lost["last_error"] or "lost" in lost["last_error"]
    node_of_pid = {info["pid"]: info["node"] for info in replicas}
    assert {node_of_pid.get(pid) for pid in answering_pids(ray_clipper, whoami)} == {
        HEAD_IP,
        REPLACEMENT_IP,
    }


def test_gpu_model_is_unschedulable_with_a_reason(ray_clipper: RayClipper) -> None:
    conn = ray_clipper.conn
    artifact = closure_artifact(lambda inputs: [0 for _ in inputs])
    failure: list[BaseException] = []

    def deploy() -> None:
        try:
            conn.deploy_artifact("gpu-model", 1, "doubles", artifact, ready_timeout_s=5.0,
                                 progress=None, resources={"num_gpus": 1})  # fmt: skip
        except BaseException as exc:
            failure.append(exc)

    deploying = threading.Thread(target=deploy)
    deploying.start()
    pending = wait_until(
        lambda: [i for i in ray_clipper.replicas("gpu-model") if i["state"] == "unschedulable"],
        30,
        "the GPU replica to be reported unschedulable",
        interval_s=0.2,
    )
    deploying.join(60)

    assert "GPU 1" in pending[0]["reason"]
    assert "no node of the Ray cluster has that much" in pending[0]["reason"]
    assert pending[0]["pid"] is None
    assert pending[0]["node"] is None
    assert len(failure) == 1
    assert isinstance(failure[0], ClipperException)
    assert "unschedulable" in str(failure[0])
    assert "GPU 1" in str(failure[0])
    assert ray_clipper.replicas("gpu-model") == []


def test_scaled_up_gpu_model_stays_unschedulable_until_scaled_down(
    ray_clipper: RayClipper,
) -> None:
    conn = ray_clipper.conn
    artifact = closure_artifact(lambda inputs: [0 for _ in inputs])
    conn.deploy_artifact("gpu-scaled", 1, "doubles", artifact, num_replicas=0, progress=None,
                         resources={"num_gpus": 0.5, "num_cpus": 0})  # fmt: skip

    conn._admin_api().set_num_replicas("gpu-scaled", 1)  # returns at once: conn would wait
    wait_until(
        lambda: [i for i in ray_clipper.replicas("gpu-scaled") if i["state"] == "unschedulable"],
        30,
        "the replica to be reported unschedulable",
        interval_s=0.2,
    )
    listing = clipper_cli(conn, "replicas")
    conn._admin_api().set_num_replicas("gpu-scaled", 0)

    assert "gpu-scaled:1:0 is unschedulable: it asks for GPU 0.5 per replica" in listing
    wait_until(lambda: not ray_clipper.replicas("gpu-scaled"), 30, "the pending replica to go")


def clipper_cli(conn: ClipperConnection, *args: str) -> str:
    """`clipper ARGS` against the connection's cluster; its stdout."""
    settings = conn.cm.settings
    flags = ["--admin-port", str(settings.admin_port), "--query-port", str(settings.query_port),
             "--state-dir", str(settings.resolved_state_dir())]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "clipper.cli", *args, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    return result.stdout


def sleep_20ms(inputs: list[Any]) -> list[float]:
    time.sleep(0.02)
    return [float(x[0]) for x in inputs]


def autoscaled(conn: ClipperConnection, model: str) -> list[dict[str, Any]]:
    events = conn._admin_api().get_events(limit=500)
    return [e["detail"] for e in events if e["kind"] == "autoscaled"
            and e["detail"]["model"] == f"{model}:1"]  # fmt: skip


def test_autoscaling_on_ray_is_bounded_by_the_cluster_and_goes_to_zero_and_back(
    ray_clipper: RayClipper,
) -> None:
    """16 clients overload one replica (20 ms per batch of 2, 100 ms SLO): it scales up, is
    capped at the two replicas the cluster's `auto` resource holds, scales down and then to
    zero once the load stops, and a query starts it again on Ray."""
    conn = ray_clipper.conn
    ray_clipper.ray.add_node(AUTO_IP, {"auto": 2})
    autoscaling = {"min_replicas": 0, "max_replicas": 4, "upscale_window_s": 1.0,
                   "downscale_delay_s": 2.0, "scale_to_zero_after_s": 4.0}  # fmt: skip
    conn.register_application("ray-auto", "doubles", "-1", 100_000)
    python_deployer.deploy_python_closure(
        conn, "ray-auto", 1, "doubles", sleep_20ms, num_replicas=1, batch_size=2,
        resources={"num_cpus": 0, "resources": {"auto": 1}}, autoscaling=autoscaling,
    )  # fmt: skip
    conn.link_model_to_app("ray-auto", "ray-auto")
    load = QueryLoad(ray_clipper, "ray-auto")
    clients = [threading.Thread(target=load.run, args=(time.monotonic() + 40,)) for _ in range(16)]
    targets: list[int] = []
    states: set[str] = set()

    def capped() -> bool:
        targets.append(target_replicas(ray_clipper, "ray-auto"))
        states.update(info["state"] for info in ray_clipper.replicas("ray-auto"))
        return any(event["capped"] for event in autoscaled(conn, "ray-auto"))

    for client in clients:
        client.start()
    try:
        wait_until(capped, 25, "a step up capped by the cluster", interval_s=0.2)
    finally:
        load.stop.set()
        for client in clients:
            client.join(30)

    assert not load.failures
    up, *_ = autoscaled(conn, "ray-auto")
    assert (up["from"], up["to"]) == (1, 2)
    assert "queue delay" in up["reason"]
    [cap] = [event for event in autoscaled(conn, "ray-auto") if event["capped"]]
    assert cap["reason"].startswith("ray-auto:1 stays at 2: queue delay")
    assert "capped by the Ray cluster: 2 running, 0 more of auto 1 fit" in cap["reason"]
    assert max(targets) == 2
    assert "unschedulable" not in states
    assert {info["node"] for info in ray_clipper.replicas("ray-auto")} == {AUTO_IP}

    wait_until(lambda: not ray_clipper.replicas("ray-auto"), 20, "scaled to zero once idle")
    assert target_replicas(ray_clipper, "ray-auto") == 0
    *_, down, to_zero = autoscaled(conn, "ray-auto")
    assert (down["from"], down["to"]) == (2, 1)
    assert "idle for 2 s" in down["reason"]
    assert (to_zero["from"], to_zero["to"]) == (1, 0)
    with httpx.Client() as client:
        first = ray_clipper.predict("ray-auto", client)
        assert first["default_explanation"] == (
            "Model was cold: ray-auto:1 was scaled to zero; a replica is starting"
        )
        wait_until(lambda: not ray_clipper.predict("ray-auto", client)["default"], 30,
                   "an answer from the woken replica on Ray", interval_s=0.2)  # fmt: skip
    [woke] = [event for event in autoscaled(conn, "ray-auto") if event["from"] == 0]
    assert woke["reason"] == "scaled ray-auto:1 from 0 to 1: a query arrived while it was cold"


def target_replicas(ray_clipper: RayClipper, model: str) -> int:
    info = ray_clipper.conn._admin_api().get_model(model, "1")
    assert info is not None
    return int(info["num_replicas"])
