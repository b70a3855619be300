"""The per-backend connect limit and FIFO of waiters (navigator/proxy/connectqueue.py)."""

from __future__ import annotations

import pytest

from navigator.proxy.connectqueue import CONNECT_LIMIT, ConnectQueue


def full(limit: int) -> ConnectQueue[str]:
    queue: ConnectQueue[str] = ConnectQueue(limit)
    assert all(queue.try_connect() for _ in range(limit))
    return queue


@pytest.mark.parametrize("limit", [1, 2, CONNECT_LIMIT])
def test_connects_up_to_the_limit_then_waits(limit: int) -> None:
    queue = full(limit)
    assert queue.opening == limit
    assert not queue.try_connect()
    assert queue.opening == limit


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectQueue(0)


def test_a_finished_connect_hands_its_slot_to_the_first_waiter() -> None:
    queue = full(2)
    queue.wait("a")
    queue.wait("b")
    assert queue.connect_done() == "a"
    assert queue.opening == 2  # "a" holds the slot now
    assert queue.connect_done() == "b"
    assert queue.connect_done() is None
    assert queue.opening == 1


def test_a_released_connection_serves_the_first_waiter_and_keeps_the_slots() -> None:
    queue = full(1)
    for name in ("a", "b", "c"):
        queue.wait(name)
    assert queue.take_waiter() == "a"
    assert queue.connect_done() == "b"  # whichever comes first, in arrival order
    assert queue.take_waiter() == "c"
    assert queue.take_waiter() is None
    assert queue.opening == 1


def test_nobody_jumps_the_queue_while_a_slot_is_free() -> None:
    queue = full(2)
    queue.wait("a")
    queue.opening = 1  # as if a connect had ended and freed its slot with nobody waiting
    assert not queue.try_connect()  # "a" is first


def test_a_waiter_that_leaves_is_never_served() -> None:
    queue = full(1)
    queue.wait("a")
    queue.wait("b")
    assert queue.leave("a")
    assert not queue.leave("a")
    assert queue.connect_done() == "b"
    assert queue.connect_done() is None


def test_unused_once_nothing_is_in_flight_and_nobody_waits() -> None:
    queue: ConnectQueue[str] = ConnectQueue(1)
    assert queue.unused
    assert queue.try_connect()
    assert not queue.unused
    queue.wait("a")
    assert queue.connect_done() == "a"
    assert not queue.unused
    assert queue.connect_done() is None
    assert queue.unused


def test_slots_are_conserved_over_a_long_sequence() -> None:
    """Every slot taken comes back exactly once: after any mix, draining frees them all."""
    queue: ConnectQueue[int] = ConnectQueue(3)
    holders = 0
    for step in range(200):
        if queue.try_connect():
            holders += 1
        else:
            queue.wait(step)
        if step % 3 == 0 and holders and queue.connect_done() is None:
            holders -= 1  # a connect ended with nobody waiting
        if step % 7 == 0:
            queue.take_waiter()
        assert queue.opening == holders
        assert queue.opening <= queue.limit
    queue.waiters.clear()
    for _ in range(holders):
        assert queue.connect_done() is None
    assert queue.unused
