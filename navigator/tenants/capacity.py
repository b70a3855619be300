"""The two limits on how long a tenant process lives: the pool's size and the idle timeout.

Room: I/O helpers for `supervisor` (timers, one lock). The supervisor owns the records and
decides what a stop means; these only say *when*:
- `PoolLimit`: with `pools.max_size`, a start first makes room — the least recently used
  idle tenant is stopped, or the start waits (up to the tenant's `startup_timeout`) for a
  process to exit or go quiet, then gives up with 503;
- `IdleTimers`: one timer per tenant, armed at the end of its last request from
  `last_active`, re-checked when it fires (a request may have come and gone meanwhile);
  never a periodic scan of all tenants.

Must not touch: processes, hooks, routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from navigator.tenants.tenantstate import (
    RUNNING,
    TenantRecord,
    TenantState,
    TenantUnavailable,
    advance,
)

log = logging.getLogger("navigator.supervisor")

S = TenantState


class PoolLimit:
    """`pools.max_size`: at most that many tenant processes at once."""

    def __init__(self, records: Callable[[], Iterable[TenantRecord]],
                 evict: Callable[[TenantRecord, str], Awaitable[None]]) -> None:
        self._records = records  # every record, current and retired
        self._evict = evict  # stop hooks, then stop (the supervisor's graceful stop)
        self._lock: asyncio.Lock | None = None
        self._changed: asyncio.Event | None = None

    async def make_room(self, record: TenantRecord, max_size: int) -> None:
        """Evict the least recently used idle tenant, or wait for one; then `record` is
        STARTING (inside the lock, so two starts never take the same free slot)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + record.tenant.startup_timeout
        async with self._lock:
            while self._running_count() >= max_size:
                victim = self._least_recently_used(exclude=record)
                if victim is not None:
                    log.info("pool full (%d): stopping idle tenant %s", max_size,
                             victim.tenant.name)
                    await self._evict(victim, "evicted (pool full)")
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TenantUnavailable(f"pool full ({max_size} tenants busy)")
                if self._changed is None:
                    self._changed = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
            advance(record, S.STARTING)

    def changed(self) -> None:
        """A process exited or went quiet: a waiting start may find room now."""
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    @property
    def waiting(self) -> bool:
        return self._changed is not None

    def _running_count(self) -> int:
        return sum(1 for r in self._records() if r.state in RUNNING)

    def _least_recently_used(self, exclude: TenantRecord) -> TenantRecord | None:
        idle = [r for r in self._records()
                if r is not exclude and r.state is S.READY and not r.busy]
        return min(idle, key=lambda r: r.touched, default=None)


def idle_timeout_of(record: TenantRecord, default: float) -> float:
    """PURE. A tenant's own `idle_timeout` (per tenant, or an on-demand helper's) wins over
    the pool's `default`; 0 means never idle-stopped."""
    own = record.tenant.capacity.idle_timeout
    return default if own is None else own


class IdleTimers:
    """A quiet process is handed to `on_idle` (which stops it) after its idle timeout
    (`timeout(record)`, read when arming: a reload may change it)."""

    def __init__(self, timeout: Callable[[TenantRecord], float],
                 on_idle: Callable[[TenantRecord], None]) -> None:
        self._timeout = timeout  # read when arming: a reload may change it
        self._on_idle = on_idle
        self.closed = False  # shutting down: no new timers

    def arm(self, record: TenantRecord) -> None:
        timeout = self._timeout(record)
        if record.state is not S.READY or record.busy or not timeout or self.closed:
            return
        self.cancel(record)
        record.idle_handle = asyncio.get_running_loop().call_at(
            record.last_active + timeout, self._due, record)

    @staticmethod
    def cancel(record: TenantRecord) -> None:
        if record.idle_handle is not None:
            record.idle_handle.cancel()
            record.idle_handle = None

    def _due(self, record: TenantRecord) -> None:
        record.idle_handle = None
        if record.state is not S.READY or record.busy:
            return  # re-armed when the last request finishes
        if record.last_active + self._timeout(record) > asyncio.get_running_loop().time():
            self.arm(record)
            return
        self._on_idle(record)
