"""An app's policy state as the server keeps it: one global state and, when the policy
runs per user, one state per `uid` (bounded, least recently used dropped first).

The global state learns from every feedback; a user's state starts as a copy of the
global one at that user's first feedback and then learns from that user's feedback only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import orjson

from clipper.selection.base import PolicyState

__all__ = ["StateBook"]


class StateBook:
    """The global state and the per-user states of one app's policy."""

    def __init__(
        self,
        global_state: PolicyState | None = None,
        per_user: bool = False,
        max_users: int = 10_000,
    ) -> None:
        self.global_state = global_state or PolicyState()
        self.per_user = per_user
        self.max_users = max_users
        self.users: OrderedDict[int, PolicyState] = OrderedDict()
        self.reset_because: str | None = None
        """Why a persisted state was found broken and started afresh (`from_bytes`)."""

    def state_for(self, uid: int | None) -> PolicyState:
        """The state that selects for `uid` (the global one without a user state)."""
        if uid is None or not self.users:
            return self.global_state
        state = self.users.get(uid)
        if state is None:
            return self.global_state
        self.users.move_to_end(uid)
        return state

    def update(self, uid: int | None, learn: Callable[[PolicyState], PolicyState]) -> None:
        """Apply `learn` to the global state and, per user, to the user's state."""
        before = self.global_state
        self.global_state = learn(before)
        if not self.per_user or uid is None:
            return
        previous = self.users.pop(uid, None)
        self.users[uid] = learn(previous if previous is not None else before)
        while len(self.users) > self.max_users:
            self.users.popitem(last=False)

    def adopt(self, global_state: PolicyState, users: dict[int, PolicyState]) -> None:
        """Take another copy's states: the global one, and these users' (the newest)."""
        self.global_state = global_state
        if not self.per_user:
            return
        for uid, state in users.items():
            self.users.pop(uid, None)
            self.users[uid] = state
        while len(self.users) > self.max_users:
            self.users.popitem(last=False)

    def to_bytes(self, policy_name: str) -> bytes:
        """The JSON persisted in the registry, tagged with the policy that wrote it."""
        return orjson.dumps({
            "policy": policy_name,
            "global": self.global_state.to_json_value(),
            "users": {str(uid): state.to_json_value() for uid, state in self.users.items()},
        })  # fmt: skip

    @classmethod
    def from_bytes(
        cls, blob: bytes | None, policy_name: str, per_user: bool, max_users: int
    ) -> StateBook:
        """Reload a persisted book; a fresh one when there is none, or when it was
        written by another policy, or when it cannot be read or breaks a policy's invariants
        (then `reset_because` says why)."""
        book = cls(None, per_user, max_users)
        if blob is None:
            return book
        try:
            value = orjson.loads(blob)
            if value.get("policy") != policy_name:
                return book
            book.global_state = PolicyState.from_json_value(value.get("global", {}))
            if per_user:
                for uid, state in list(value.get("users", {}).items())[-max_users:]:
                    book.users[int(uid)] = PolicyState.from_json_value(state)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            fresh = cls(None, per_user, max_users)
            fresh.reset_because = str(exc) or type(exc).__name__
            return fresh
        return book
