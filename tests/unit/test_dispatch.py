"""The pool's pure decisions: which process, how many starts, queue, recycling (fake clock)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from navigator.tenants.dispatch import (
    WaitQueue,
    may_queue,
    pick_process,
    processes_to_start,
    recycle_limit,
    recycle_reason,
)


@dataclass
class Proc:
    name: str
    in_flight: int
    serving: bool = True


@pytest.mark.parametrize(("loads", "limit", "expected"), [
    ([], 0, None),
    ([("a", 3)], 0, "a"),  # no limit: the only process takes everything
    ([("a", 2), ("b", 1), ("c", 1)], 0, "b"),  # least busy, earliest on a tie
    ([("a", 0), ("b", 0)], 0, "a"),
    ([("a", 1), ("b", 1)], 1, None),  # every one full
    ([("a", 1), ("b", 0)], 1, "b"),
    ([("a", 4), ("b", 2)], 3, "b"),
])
def test_pick_least_busy_with_room(loads: list[tuple[str, int]], limit: int,
                                   expected: str | None) -> None:
    chosen = pick_process([Proc(n, load) for n, load in loads], limit)
    assert (chosen.name if chosen else None) == expected


def test_pick_skips_processes_not_serving() -> None:
    procs = [Proc("old", 0, serving=False), Proc("new", 5)]
    chosen = pick_process(procs, 0)
    assert chosen is not None
    assert chosen.name == "new"


@pytest.mark.parametrize(("live", "starting", "serving", "idle", "waiting", "most", "starts"), [
    (0, 0, 0, 0, 1, 4, 1),  # first request: one start
    (1, 1, 0, 0, 20, 4, 0),  # first start running: everyone shares it
    (1, 0, 1, 1, 0, 4, 0),  # an idle process: no start
    (1, 0, 1, 0, 0, 4, 1),  # all busy (no limit, nobody queued): grow by one
    (2, 1, 1, 0, 0, 4, 0),  # ... unless one is already starting
    (1, 0, 1, 0, 3, 4, 3),  # three wait: three starts
    (2, 0, 2, 0, 9, 4, 2),  # never above max_processes
    (4, 0, 4, 0, 9, 4, 0),
    (1, 0, 1, 0, 5, 1, 0),  # max_processes 1: today's behaviour
])
def test_processes_to_start(live: int, starting: int, serving: int, idle: int, waiting: int,
                            most: int, starts: int) -> None:
    assert processes_to_start(live=live, starting=starting, serving=serving, idle=idle,
                              waiting=waiting, max_processes=most) == starts


@pytest.mark.parametrize(("queued", "limit", "ok"), [(0, 100, True), (99, 100, True),
                                                     (100, 100, False), (0, 0, False)])
def test_may_queue(queued: int, limit: int, ok: bool) -> None:
    assert may_queue(queued, limit) is ok


@pytest.mark.parametrize(("limit", "draw", "expected"), [
    (0, 0.5, 0), (100, 0.0, 100), (100, 0.5, 105), (100, 0.999, 109), (1, 0.9, 1)])
def test_recycle_limit_adds_up_to_ten_percent(limit: int, draw: float, expected: int) -> None:
    assert recycle_limit(limit, draw) == expected


@pytest.mark.parametrize(("served", "limit", "rss", "soft", "reason"), [
    (5, 0, None, None, None),
    (9, 10, None, None, None),
    (10, 10, None, None, "max_requests"),
    (0, 0, 2000, 1000, "memory"),
    (0, 0, 1000, 1000, None),
    (0, 0, None, 1000, None),  # process gone: nothing to say
])
def test_recycle_reason(served: int, limit: int, rss: int | None, soft: int | None,
                        reason: str | None) -> None:
    assert recycle_reason(served, limit, rss, soft) == reason


def test_wait_queue_is_fifo_and_measures_waits_on_the_given_clock() -> None:
    queue: WaitQueue[str] = WaitQueue()
    queue.push("first", now=10.0)
    queue.push("second", now=11.0)
    queue.push("third", now=12.5)
    assert len(queue) == 3
    assert queue.oldest_wait(now=13.0) == 3.0
    assert queue.remove("second") is True  # gave up
    assert queue.remove("second") is False
    assert queue.pop(now=14.0) == ("first", 4.0)
    assert list(queue) == ["third"]
    assert queue.pop(now=15.0) == ("third", 2.5)
    assert len(queue) == 0
    assert queue.oldest_wait(now=20.0) == 0.0
    with pytest.raises(IndexError):
        queue.pop(now=21.0)
