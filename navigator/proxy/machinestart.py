"""Bringing another machine up: one start call, then watching until it runs.

Room: I/O (tasks and timers; the start call and the "does it run" look are given by the
caller, `proxy.wake`, so this module knows neither DNS nor the Machines API wire). One
`MachineStarts` per server, owned by `proxy.resolver.MachineResolver`.

Invariants:
- one bring-up per machine at a time: concurrent requests for a stopped machine share it, so
  the machine is asked to start once, however many requests wait;
- a bring-up looks first (the machine may already run), calls start at most once, and only
  when the ledger allows it; then it looks again with growing pauses until the machine runs
  or its deadline passes; it never raises;
- a start fails when the call is refused or when the machine does not run by the deadline
  (accepted but stuck): either backs the machine off (`startledger`); running clears it;
- a request that stops waiting (its client left, its own deadline) does not cancel the
  bring-up for the others; `close` cancels what is left at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from navigator.proxy.startledger import StartLedger, poll_delays

log = logging.getLogger("navigator.wake")

MachineKey = tuple[str, str]  # (app, machine id)
Look = Callable[[float], Awaitable[bool]]  # deadline (loop time) -> does it run and answer?
Start = Callable[[float], Awaitable[bool]]  # deadline -> was the start call accepted?


class MachineStarts:
    """Shared bring-ups, one per machine, and the back-off of failed start calls."""

    __slots__ = ("_inflight", "_loop", "ledger", "start_calls")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._inflight: dict[MachineKey, asyncio.Task[bool]] = {}
        self.ledger = StartLedger()
        self.start_calls = 0  # how many start calls were made (status, tests)

    def bring_up(self, key: MachineKey, look: Look, start: Start, *, timeout: float,
                 backoff: float) -> asyncio.Task[bool]:
        """The bring-up of `key`, started now unless one is under way; True once it runs."""
        task = self._inflight.get(key)
        if task is None:
            task = self._loop.create_task(self._bring_up(key, look, start, timeout, backoff))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task

    async def _bring_up(self, key: MachineKey, look: Look, start: Start, budget: float,
                        backoff: float) -> bool:
        loop = self._loop
        deadline = loop.time() + budget
        called = False
        delays = poll_delays()
        try:
            while True:
                if await look(deadline):
                    if called:
                        self.ledger.record(key, True, loop.time(), backoff)
                    return True
                now = loop.time()
                if not called and self.ledger.may_start(key, now):
                    called = True
                    self.start_calls += 1
                    if not await start(deadline):
                        self.ledger.record(key, False, loop.time(), backoff)
                    continue  # look again at once: a start may be quick
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.warning("machine %s of %s not running after %.1fs", key[1], key[0],
                                budget)
                    if called:
                        self.ledger.record(key, False, loop.time(), backoff)
                    return False
                await asyncio.sleep(min(next(delays), remaining))
        except Exception:  # a bring-up must end in True/False for every waiter
            log.exception("bringing up machine %s of %s failed", key[1], key[0])
            return False

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
