"""The connection gate: the per-address cap, the port's cap, and idle connections given up
first (the longest idle), never one mid-request."""

from __future__ import annotations

from clipper.http.connection_gate import ConnectionGate, default_per_client


class Connection:
    def __init__(self, idle: bool = True, rank: float = 0.0) -> None:
        self.idle = idle
        self.rank = rank
        self.evicted = False

    def is_idle(self) -> bool:
        return self.idle

    def idle_rank(self) -> float:
        return self.rank

    def evict(self) -> None:
        self.evicted = True


def test_one_address_gets_at_most_its_share() -> None:
    gate = ConnectionGate(10, max_per_client=2)

    assert gate.admit(Connection(), "a") is None
    assert gate.admit(Connection(), "a") is None
    refusal = gate.admit(Connection(), "a")

    assert refusal is not None
    assert "max_connections_per_client" in refusal
    assert gate.admit(Connection(), "b") is None
    assert (len(gate), gate.refused) == (3, 1)


def test_a_full_port_gives_up_its_longest_idle_connection() -> None:
    gate = ConnectionGate(3, max_per_client=3)
    busy = Connection(idle=False, rank=0.0)
    idle_long = Connection(rank=1.0)
    idle_short = Connection(rank=5.0)
    for connection in (busy, idle_long, idle_short):
        assert gate.admit(connection, "a") is None

    assert gate.admit(Connection(), "b") is None

    assert (busy.evicted, idle_long.evicted, idle_short.evicted) == (False, True, False)
    assert (len(gate), gate.evicted) == (3, 1)


def test_a_port_full_of_requests_in_progress_refuses() -> None:
    gate = ConnectionGate(2, max_per_client=2)
    busy = [Connection(idle=False), Connection(idle=False)]
    for connection in busy:
        gate.admit(connection, "a")

    refusal = gate.admit(Connection(), "b")

    assert refusal is not None
    assert "max_connections" in refusal
    assert not any(connection.evicted for connection in busy)


def test_release_frees_the_slot_once() -> None:
    gate = ConnectionGate(1, max_per_client=1)
    connection = Connection(idle=False)
    gate.admit(connection, "a")

    gate.release(connection)
    gate.release(connection)  # a second close does nothing

    assert len(gate) == 0
    assert gate.admit(Connection(idle=False), "a") is None


def test_connections_without_an_address_count_only_against_the_port() -> None:
    gate = ConnectionGate(2, max_per_client=1)

    assert gate.admit(Connection(idle=False), None) is None
    assert gate.admit(Connection(idle=False), None) is None
    assert gate.admit(Connection(idle=False), None) is not None


def test_the_default_share_is_half_the_port() -> None:
    assert [default_per_client(n) for n in (1, 2, 5, 2048)] == [1, 1, 2, 1024]
    assert ConnectionGate(10).max_per_client == 5
