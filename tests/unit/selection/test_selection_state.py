"""Policy state: immutable, serialisable, optionally per user."""

from __future__ import annotations

import pytest

from clipper.selection.base import PolicyState
from clipper.selection.book import StateBook


def learned(value: float) -> PolicyState:
    return PolicyState({"a": {"log_weight": value}})


def test_with_stats_returns_a_new_state_and_keeps_the_old_one() -> None:
    state = PolicyState({"a": {"alpha": 1.0}})

    new = state.with_stats({"a": {"beta": 2.0}, "b": {"alpha": 3.0}})

    assert new.arms == {"a": {"alpha": 1.0, "beta": 2.0}, "b": {"alpha": 3.0}}
    assert state.arms == {"a": {"alpha": 1.0}}


def test_a_book_round_trips_through_bytes() -> None:
    book = StateBook(learned(1.5), per_user=True)
    book.update(7, lambda state: learned(2.5))

    again = StateBook.from_bytes(book.to_bytes("exp3"), "exp3", per_user=True, max_users=10)

    assert again.global_state == learned(2.5)
    assert again.state_for(7) == learned(2.5)


@pytest.mark.parametrize("blob", [None, b"not json", b'{"policy": "thompson"}', b"[]"])
def test_a_missing_foreign_or_broken_blob_gives_a_fresh_book(blob: bytes | None) -> None:
    book = StateBook.from_bytes(blob, "exp3", per_user=False, max_users=10)

    assert book.global_state == PolicyState()


def test_per_user_states_start_from_the_global_one_and_learn_separately() -> None:
    book = StateBook(learned(1.0), per_user=True)

    book.update(1, lambda state: learned(state.stat("a", "log_weight") + 1))

    assert book.state_for(1) == learned(2.0)
    assert book.state_for(2) == learned(2.0)  # no state of its own: the global one
    book.update(2, lambda state: learned(state.stat("a", "log_weight") + 10))
    assert book.state_for(1) == learned(2.0)
    assert book.state_for(2) == learned(12.0)


def test_per_user_states_are_bounded_least_recently_used_first() -> None:
    book = StateBook(per_user=True, max_users=2)
    for uid in (1, 2, 3):
        book.update(uid, lambda state: state)

    assert list(book.users) == [2, 3]


def test_without_per_user_only_the_global_state_learns() -> None:
    book = StateBook()

    book.update(1, lambda state: learned(3.0))

    assert book.users == {}
    assert book.state_for(1) == learned(3.0)
