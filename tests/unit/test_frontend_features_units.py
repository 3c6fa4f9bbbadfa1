"""The pure parts of what every frontend has (issue 26): one policy state shared through
frontend 0 (clipper.frontends.policy_sharing, StateBook.adopt) and the dashboard's summary
of several processes' merged metrics (clipper.admin.dashboard.summary)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clipper.admin.dashboard.history import SummaryHistory, sample_summaries
from clipper.admin.dashboard.summary import exposition_summary, metrics_summary
from clipper.core.records import AppRecord, ModelVersionRecord, RegistrySnapshot
from clipper.core.types import InputType
from clipper.dataplane.dataplane import DataPlane
from clipper.frontends.metrics_merge import merge_expositions
from clipper.frontends.policy_sharing import PolicySharing, adopt_policy_states, policy_states
from clipper.selection.base import Feedback, PolicyState
from clipper.selection.book import StateBook

ARMS = ("a", "b")


def bandit_snapshot(policy: str = "exp3") -> RegistrySnapshot:
    app = AppRecord("app", InputType.DOUBLES, "-1", 100_000, policy=policy,
                    policy_params={"per_user": True} if policy == "exp3" else {})  # fmt: skip
    versions = [ModelVersionRecord(arm, "1", InputType.DOUBLES) for arm in ARMS]
    return RegistrySnapshot(
        apps={"app": app},
        versions={version.model_id: version for version in versions},
        current_versions=dict.fromkeys(ARMS, "1"),
        links={"app": ARMS},
    )


@pytest.fixture
async def planes() -> AsyncIterator[list[DataPlane]]:
    """Two frontends' data planes and the control process's, serving one exp3 app."""
    made = [DataPlane() for _ in range(3)]
    for plane in made:
        plane.apply(bandit_snapshot())
    yield made
    for plane in made:
        for removed in plane.apply(RegistrySnapshot()):
            await removed.close()


def reward(arm: str, value: float, uid: int | None = None) -> Feedback:
    return Feedback({arm: value}, ARMS, (arm,), uid)


def book(plane: DataPlane) -> StateBook:
    found = plane.policy_book("app")
    assert found is not None
    return found[1]


async def test_feedback_judged_elsewhere_reaches_the_owner_in_order_and_then_everyone(
    planes: list[DataPlane], tmp_path: Path
) -> None:
    owner_plane, other_plane, control_plane = planes
    owner = PolicySharing(owner_plane, tmp_path, 0, 2)
    other = PolicySharing(other_plane, tmp_path, 1, 2)
    alone = DataPlane()
    alone.apply(bandit_snapshot())
    feedbacks = [reward("a", 1.0, uid=7), reward("b", 0.0), reward("a", 1.0)]
    sent = []
    for feedback in feedbacks:  # what frontend 1 judged, as frontend 0 is sent it
        other_plane.learn("app", "exp3", feedback)
        sent.append({"app": "app", "policy": "exp3", "rewards": dict(feedback.rewards),
                     "arms": list(feedback.arms), "selected": list(feedback.selected),
                     "uid": feedback.uid})  # fmt: skip
        alone.learn("app", "exp3", feedback)
    applied = owner.observe(sent)
    states = owner.states()["states"]
    adopt_policy_states(control_plane, states)
    adopt_policy_states(other_plane, states)

    assert applied == {"applied": 3}
    assert book(owner_plane).global_state == book(alone).global_state  # one order, all of it
    assert book(control_plane).global_state == book(owner_plane).global_state
    assert book(control_plane).users == {7: book(alone).users[7]}
    assert not other.owner
    assert owner.owner


async def test_an_owner_shares_only_the_users_that_learned_and_skips_another_policy(
    planes: list[DataPlane],
) -> None:
    owner_plane, _, control_plane = planes
    for uid in (1, 2):
        owner_plane.learn("app", "exp3", reward("a", 1.0, uid))

    changed = policy_states(owner_plane, {"app": {2}})
    adopt_policy_states(control_plane, changed)
    control_plane.apply(bandit_snapshot("thompson"))
    mismatched = owner_plane.learn("app", "thompson", reward("a", 1.0))

    assert list(changed["app"]["users"]) == ["2"]
    assert mismatched is False
    assert policy_states(owner_plane, {"gone": set()}) == {}
    adopt_policy_states(control_plane, changed)  # the policy changed there: kept its own
    assert book(control_plane).global_state == PolicyState()


def test_a_book_adopts_another_copy_newest_users_last() -> None:
    book = StateBook(PolicyState({"a": {"x": 1.0}}), per_user=True, max_users=2)
    book.users[1] = PolicyState()
    new = PolicyState({"a": {"x": 5.0}})

    book.adopt(new, {2: new, 3: new})
    flat = StateBook(per_user=False)
    flat.adopt(new, {2: new})

    assert book.global_state == new
    assert list(book.users) == [2, 3]  # the oldest (1) dropped past max_users
    assert (flat.global_state, dict(flat.users)) == (new, {})


def test_a_summary_of_merged_expositions_equals_one_registry_holding_it_all() -> None:
    from clipper.metrics.server_metrics import ServerMetrics

    one, two, both = ServerMetrics(), ServerMetrics(), ServerMetrics()
    for metrics, latency in ((one, 0.004), (two, 0.2), (both, 0.004), (both, 0.2)):
        metrics.for_app("a").observe_request(latency, 1, 1)

    merged = exposition_summary(merge_expositions([one.render(), two.render()]))
    alone = metrics_summary(both)

    assert merged["apps"] == alone["apps"]
    assert merged["apps"]["a"]["requests"] == 2


async def test_the_history_awaits_a_coroutine_summary() -> None:
    history = SummaryHistory(4, 0.01)

    async def take() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"apps": {"a": {"requests": 1.0}}}

    task = asyncio.create_task(sample_summaries(history, take))
    await asyncio.sleep(0.05)
    task.cancel()

    assert len(history) >= 2
    assert next(iter(history)) == {"apps": {"a": {"requests": 1.0}}}
