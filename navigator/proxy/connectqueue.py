"""How many connects to one backend may be in flight, and who waits for a connection next.

Room: pure (no asyncio, sockets or clocks): the upstream pool asks this table and does the
I/O. Waiters are opaque tokens (the pool uses futures, tests use strings).

Why: a burst of first requests (1,000 clients arriving at once) would otherwise open as many
backend connections at the same instant, and a backend's listen queue is often far smaller
(Python's http.server 5, asyncio 100, old kernels cap every queue at 128): dropped SYNs are
retried after 1 s, then 3 s. Connects beyond the limit wait instead; a keep-alive connection
that comes free meanwhile serves the first waiter at once, which usually beats connecting.

Invariants:
- at most `limit` connects are in flight (`opening`); a waiter that is handed a slot holds it,
  so `opening` never drops below the number of connects the pool is running;
- first come, first served: a new request connects at once only when nobody waits;
- every slot taken comes back through `connect_done` exactly once, to the next waiter or the
  free count; a waiter that leaves is never served.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

W = TypeVar("W")

CONNECT_LIMIT = 256
"""Connects in flight per backend by default. Measured with c1000 (1,000 clients, a cold
pool, nginx as backend with a 4,096 queue): each slot comes back only after a loop iteration
or two, so a small limit paces the pool's growth and requests wait a hand-off each meanwhile;
32 and 100 cost 10-35 % CPU per request and a higher p99, 256 was within noise of no limit.
256 still covers the listen queues of puma (1,024), Node and nginx (511), gunicorn, uvicorn
and Go (2,048 and more); backends with smaller queues (asyncio 100, Tomcat 100) need a pool
built with a lower `connect_limit`."""


class ConnectQueueTimeout(TimeoutError):
    """No connection came free and no connect slot opened within the connect timeout: the
    backend is saturated, not unreachable (503, as HAProxy answers a queue timeout). Defined
    here, not in the compiled upstream module: mypyc cannot subclass TimeoutError."""


class ConnectQueue(Generic[W]):
    """One backend's connects in flight and its FIFO of waiters."""

    __slots__ = ("limit", "opening", "waiters")

    def __init__(self, limit: int = CONNECT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"connect limit must be at least 1, not {limit}")
        self.limit = limit
        self.opening = 0
        self.waiters: deque[W] = deque()

    def try_connect(self) -> bool:
        """Take a slot if one is free and nobody waits before us; False: `wait` instead."""
        if self.opening < self.limit and not self.waiters:
            self.opening += 1
            return True
        return False

    def wait(self, waiter: W) -> None:
        self.waiters.append(waiter)

    def leave(self, waiter: W) -> bool:
        """A waiter gives up (client gone, deadline); False if it was already served."""
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return False
        return True

    def connect_done(self) -> W | None:
        """A connect ended, either way: its slot passes to the first waiter (returned; it now
        holds the slot and must connect), or is freed (None)."""
        if self.waiters:
            return self.waiters.popleft()
        self.opening -= 1
        return None

    def take_waiter(self) -> W | None:
        """A keep-alive connection came free: the first waiter takes it (None: it goes idle)."""
        return self.waiters.popleft() if self.waiters else None

    @property
    def unused(self) -> bool:
        """Nothing in flight and nobody waiting: the pool may forget this backend's queue."""
        return self.opening == 0 and not self.waiters
