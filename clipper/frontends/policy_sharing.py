"""One selection-policy state for every frontend: frontend 0 owns it.

Each frontend learns from the feedback it judges at once (as one frontend would), and
every other frontend sends what its policies learned (the `Feedback` each observed) to
frontend 0, which applies it too, in the order it arrives: frontend 0's state has learned
from all the feedback, in one order, as one frontend's would (the policies' updates are
not all commutative: exp3 weights by the current probabilities, thompson discounts). Every
`SHARE_INTERVAL_S` that something changed, frontend 0 sends the changed states (the global
state and the users that learned) to the other frontends and the control process, which
adopt them in place of their own. So each frontend selects with every frontend's feedback
within about twice `SHARE_INTERVAL_S` plus a peer request, and only frontend 0 persists
(its policy flusher), so the persisted state is written once and has learned from all.

A frontend that starts (or restarts) asks frontend 0 for every state; a restarted frontend
0 resumes from the registry (at most the flusher's interval behind). Nothing here is on the
query path; feedback waits on no peer request. What cannot be sent (frontend 0 down) is
dropped and logged: that feedback then stays in the state of the frontend that judged it,
until frontend 0's next states replace it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from clipper.dataplane.dataplane import DataPlane
from clipper.frontends.peer import PeerUnreachable, ask_peer
from clipper.rpc.fanout import frontend_peer_path
from clipper.selection.base import Feedback, PolicyState

__all__ = [
    "OWNER",
    "SHARE_INTERVAL_S",
    "PolicySharing",
    "adopt_policy_states",
    "policy_states",
    "pull_policy_states",
]

log = logging.getLogger("clipper.frontends")
OWNER = 0
SHARE_INTERVAL_S = 0.02
"""How long changes gather before they are sent (one peer request per interval, not per
feedback)."""
MAX_PENDING = 10_000
"""Learned feedback a frontend holds for frontend 0 at most (more is dropped, logged)."""
SEND_TIMEOUT_S = 2.0


class PolicySharing:
    """Frontend `index` of `count`'s side (see the module's docstring)."""

    def __init__(self, dataplane: DataPlane, state_dir: Path, index: int, count: int) -> None:
        self._dataplane = dataplane
        self._state_dir = state_dir
        self.index, self.count = index, count
        self._pending: list[dict[str, Any]] = []  # a non-owner's, for frontend 0
        self._changed: dict[str, set[int]] = {}  # the owner's: app -> users that learned
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()
        self._unreachable = False  # logged once per outage
        dataplane.watch_learning(self._learned)

    @property
    def owner(self) -> bool:
        """Whether this frontend owns the shared state."""
        return self.index == OWNER

    # -- what this frontend learned ---------------------------------------------------------

    def _learned(self, app: str, policy: str, feedback: Feedback) -> None:
        if self.owner:
            self._mark(app, feedback.uid)
        elif len(self._pending) < MAX_PENDING:
            self._pending.append(_observation(app, policy, feedback))
        else:
            log.warning("frontend 0 is behind: feedback of app %s not shared", app)
            return
        self._wake.set()

    def _mark(self, app: str, uid: int | None) -> None:
        users = self._changed.setdefault(app, set())
        if uid is not None:
            users.add(uid)

    # -- peer requests ----------------------------------------------------------------------

    def observe(self, observations: list[dict[str, Any]]) -> dict[str, Any]:
        """The owner applies what another frontend learned."""
        applied = 0
        for item in observations:
            feedback = Feedback(
                {str(arm): float(reward) for arm, reward in item["rewards"].items()},
                tuple(item["arms"]), tuple(item["selected"]), item.get("uid"),
            )  # fmt: skip
            if self._dataplane.learn(str(item["app"]), str(item["policy"]), feedback):
                self._mark(str(item["app"]), feedback.uid)
                applied += 1
        if applied:
            self._wake.set()
        return {"applied": applied}

    def states(self) -> dict[str, Any]:
        """Every app's whole state (asked of the owner by a frontend that starts)."""
        return {"states": policy_states(self._dataplane, None)}

    # -- the background task ------------------------------------------------------------------

    async def run(self) -> None:
        """Send what changed every `SHARE_INTERVAL_S` it changed, until cancelled."""
        if not self.owner:
            await self._catch_up()
        while True:
            await self._wake.wait()
            await asyncio.sleep(SHARE_INTERVAL_S)
            self._wake.clear()
            if self.owner:
                await self._broadcast()
            else:
                await self._forward()

    async def flush(self) -> None:
        """A non-owner sends what it learned now (the control process is about to read
        the owner's state)."""
        if not self.owner:
            await self._forward()

    async def _catch_up(self) -> None:
        with contextlib.suppress(PeerUnreachable):
            reply = await ask_peer(self._peer(OWNER), {"op": "policy_states_all"},
                                   timeout_s=SEND_TIMEOUT_S)  # fmt: skip
            adopt_policy_states(self._dataplane, reply["states"])

    async def _forward(self) -> None:
        async with self._sending:  # one at a time, in order: a flush waits for the last
            pending, self._pending = self._pending, []
            if pending:
                await self._send_pending(pending)

    async def _send_pending(self, pending: list[dict[str, Any]]) -> None:
        try:
            await ask_peer(self._peer(OWNER), {"op": "observe", "observations": pending},
                           timeout_s=SEND_TIMEOUT_S)  # fmt: skip
        except PeerUnreachable as exc:
            if not self._unreachable:
                log.warning("frontend 0 is unreachable (%s): feedback learned here is not "
                            "shared until it is back", exc)  # fmt: skip
            self._unreachable = True
        else:
            self._unreachable = False

    async def _broadcast(self) -> None:
        changed, self._changed = self._changed, {}
        states = policy_states(self._dataplane, changed)
        if not states:
            return
        request = {"op": "policy_states", "states": states}
        peers = [self._peer(i) for i in range(self.count) if i != OWNER]
        peers.append(self._peer(None))  # the control process: its app info shows the state
        await asyncio.gather(*(self._send(path, request) for path in peers))

    async def _send(self, path: Path, request: dict[str, Any]) -> None:
        with contextlib.suppress(PeerUnreachable):  # restarting: it catches up at start
            await ask_peer(path, request, timeout_s=SEND_TIMEOUT_S)

    def _peer(self, index: int | None) -> Path:
        return frontend_peer_path(self._state_dir, index)


async def pull_policy_states(state_dir: Path, count: int, dataplane: DataPlane) -> None:
    """The control process adopts the owner's states once every frontend has sent it what
    it learned: an admin read shows every feedback answered so far. A frontend that does
    not answer is skipped (its feedback arrives with the next states)."""
    for index in range(count):
        if index != OWNER:
            with contextlib.suppress(PeerUnreachable):
                await ask_peer(frontend_peer_path(state_dir, index), {"op": "policy_flush"},
                               timeout_s=SEND_TIMEOUT_S)  # fmt: skip
    with contextlib.suppress(PeerUnreachable):
        reply = await ask_peer(frontend_peer_path(state_dir, OWNER),
                               {"op": "policy_states_all"}, timeout_s=SEND_TIMEOUT_S)  # fmt: skip
        adopt_policy_states(dataplane, reply["states"])


def policy_states(dataplane: DataPlane, changed: dict[str, set[int]] | None) -> dict[str, Any]:
    """`{app: {"policy", "global", "users"}}` of the `changed` apps (each with the users
    named; None: every app, every user), as JSON."""
    states: dict[str, Any] = {}
    for app in changed if changed is not None else dataplane.policy_apps():
        found = dataplane.policy_book(app)
        if found is None:
            continue
        policy, book = found
        uids = book.users.keys() if changed is None else changed[app] & book.users.keys()
        states[app] = {
            "policy": policy,
            "global": book.global_state.to_json_value(),
            "users": {str(uid): book.users[uid].to_json_value() for uid in uids},
        }
    return states


def adopt_policy_states(dataplane: DataPlane, states: dict[str, Any]) -> None:
    """Take the owner's states (`policy_states`) for each app that runs the same policy."""
    for app, value in states.items():
        found = dataplane.policy_book(app)
        if found is None or found[0] != value.get("policy"):
            continue
        users = {int(uid): PolicyState.from_json_value(state)
                 for uid, state in value.get("users", {}).items()}  # fmt: skip
        found[1].adopt(PolicyState.from_json_value(value.get("global", {})), users)


def _observation(app: str, policy: str, feedback: Feedback) -> dict[str, Any]:
    return {
        "app": app, "policy": policy, "rewards": dict(feedback.rewards),
        "arms": list(feedback.arms), "selected": list(feedback.selected), "uid": feedback.uid,
    }  # fmt: skip
