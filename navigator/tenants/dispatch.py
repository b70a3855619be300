"""Pure decisions of a tenant's process pool: which process takes a request, how many new
processes to start, whether a request may queue, when a process is due for recycling, and
the per-tenant FIFO of waiting requests.

Room: pure (no asyncio, clocks or processes: the time is an argument). The pool and the
supervisor do the I/O and call these.

Invariants:
- a request goes to the least busy serving process that is not being replaced (retired)
  and has room under `max_concurrency` (0 = no limit); ties go to the earliest process;
- new processes start only when no serving process is idle, never above `max_processes`
  (counting the ones already starting), and at most one per waiting request, so concurrent
  first requests share one start;
- the queue is first in, first out; its length never exceeds `max_queue` (a request that
  finds it full is refused, it never waits);
- `recycle_limit` spreads recycling over up to 10% more requests so processes started
  together are not all replaced at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar

RECYCLE_JITTER = 0.1


class ProcessLoad(Protocol):
    """What dispatch reads of one process (a `TenantRecord`)."""

    @property
    def in_flight(self) -> int: ...
    @property
    def serving(self) -> bool: ...  # ready (or running stop hooks) and not retired


P = TypeVar("P", bound=ProcessLoad)
T = TypeVar("T")


def pick_process(processes: Iterable[P], max_concurrency: int) -> P | None:
    """The least busy serving process with room, or None (every one full, none ready)."""
    best: P | None = None
    for process in processes:
        if not process.serving:
            continue
        load = process.in_flight
        if max_concurrency and load >= max_concurrency:
            continue
        if best is None or load < best.in_flight:
            best = process
            if load == 0:
                break
    return best


def processes_to_start(*, live: int, starting: int, serving: int, idle: int, waiting: int,
                       max_processes: int) -> int:
    """How many processes to start now.

    `live`: processes starting or running (not being replaced); `serving`: ready ones;
    `idle`: serving ones with nothing in flight; `waiting`: requests that found no process
    with room (queued, plus the one asking). Until one process serves, starts go one at a
    time: the tenant's first boot (and its before_start hooks) runs alone."""
    if idle > 0 or live >= max_processes:
        return 0
    if serving == 0:
        return 0 if starting else 1
    wanted = max(waiting, 1) - starting
    return max(0, min(max_processes - live, wanted))


def may_queue(queued: int, max_queue: int) -> bool:
    return queued < max_queue


def recycle_limit(max_requests: int, draw: float) -> int:
    """Requests one process serves before it is replaced (`draw` in [0, 1)); 0 = never."""
    if max_requests <= 0:
        return 0
    return max_requests + int(max_requests * RECYCLE_JITTER * draw)


def recycle_reason(served: int, limit: int, rss: int | None,
                   soft_limit: int | None) -> str | None:
    """Why a process should be replaced now, or None."""
    if limit and served >= limit:
        return "max_requests"
    if soft_limit and rss is not None and rss > soft_limit:
        return "memory"
    return None


class WaitQueue(Generic[T]):
    """FIFO of waiting items with the time each joined (for the queue-wait figures)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[tuple[T, float]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return (item for item, _ in self._items)

    def push(self, item: T, now: float) -> None:
        self._items.append((item, now))

    def pop(self, now: float) -> tuple[T, float]:
        """The oldest item and how long it waited. IndexError when empty."""
        item, joined = self._items.popleft()
        return item, now - joined

    def remove(self, item: T) -> bool:
        """Take `item` out wherever it is (it gave up); False when it was not queued."""
        for index, (queued, _) in enumerate(self._items):
            if queued is item:
                del self._items[index]
                return True
        return False

    def oldest_wait(self, now: float) -> float:
        return now - self._items[0][1] if self._items else 0.0
