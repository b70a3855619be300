"""One tenant's process pool: its process records, the FIFO of requests waiting for a slot,
and its counters.

Room: I/O helper of the `Supervisor` (futures for the waiting requests; no processes, no
timers). The decisions are `dispatch`'s; the supervisor starts and stops the processes.

Invariants:
- a slot is a unit of a record's `in_flight`: `take` adds one, `TenantRecord.release` takes
  it back; a waiting request is handed a slot already taken for it (`hand_over`), so a slot
  freed by one request can never be stolen by a newcomer while older requests wait;
- a waiter leaves the queue when it gets a slot, gives up (timeout, cancelled) or the
  tenant fails to start (`fail_waiters`): nothing waits forever;
- the queue holds futures only: a waiting request's body stays in its connection, bounded
  by the connection's own buffer limit (reads pause).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

from navigator.config.runtime import Tenant
from navigator.tenants.dispatch import WaitQueue, may_queue, pick_process
from navigator.tenants.tenantstate import (
    RUNNING,
    SERVING,
    TenantRecord,
    TenantState,
    TenantUnavailable,
    advance,
    record_status,
)

S = TenantState


class QueueFull(TenantUnavailable):
    """Every process is full and so is the queue (→ 503 at once, with Retry-After)."""


class QueueTimeout(TenantUnavailable):
    """Waited `queue_timeout` for a process slot (→ 503)."""


class TenantPool:
    """The processes of one tenant definition and the requests waiting for them."""

    __slots__ = ("_on_release", "queue", "queue_wait_total", "queued_total", "records",
                 "recycled", "refused", "retired", "tenant", "timed_out")

    def __init__(self, tenant: Tenant,
                 on_release: Callable[[TenantPool, TenantRecord], None]) -> None:
        self.tenant = tenant
        self.records: list[TenantRecord] = []
        self.queue: WaitQueue[asyncio.Future[TenantRecord]] = WaitQueue()
        self._on_release = functools.partial(on_release, self)
        self.retired = False  # the tenant was removed by a reload
        self.queued_total = 0  # requests that had to wait
        self.queue_wait_total = 0.0  # seconds they waited, summed
        self.refused = 0  # 503 because the queue was full
        self.timed_out = 0  # 503 because the wait was too long
        self.recycled = 0  # processes replaced (max_requests, memory, rolling restart)

    # --- records -----------------------------------------------------------------------------
    def new_record(self) -> TenantRecord:
        """A new process slot with the lowest index no current record uses."""
        used = {record.index for record in self.records}
        index = next(i for i in range(len(used) + 1) if i not in used)
        record = TenantRecord(self.tenant, index, self._on_release)
        self.records.append(record)
        return record

    def drop(self, record: TenantRecord) -> None:
        with contextlib.suppress(ValueError):
            self.records.remove(record)

    def is_minimum(self, record: TenantRecord) -> bool:
        """One of the tenant's `min_instances` ready processes: never idle-stopped."""
        ready = sum(1 for r in self.live() if r.state is S.READY)
        return not record.retired and ready <= self.tenant.capacity.min_instances

    def live(self) -> list[TenantRecord]:
        """Processes that count towards max_processes: starting (a start task, maybe still
        waiting for room under `pools.max_size`) or running, not replaced."""
        return [r for r in self.records
                if not r.retired and (r.state in RUNNING or r.start_task is not None)]

    def starting(self) -> int:
        """Live processes still on their way to serving. A process is ready a moment before
        its start task's done-callback clears `start_task` (the next loop turn); counting it
        there as starting kept a busy pool from growing (a request that looked in that
        moment started nothing)."""
        return sum(1 for r in self.live() if r.start_task is not None and r.state not in SERVING)

    def serving(self) -> list[TenantRecord]:
        return [r for r in self.records if r.serving]

    def serving_any(self) -> TenantRecord | None:
        """The first process that serves (retired ones too), or None."""
        return next((r for r in self.records if r.state in SERVING), None)

    def any_serving(self) -> bool:
        return any(r.state in SERVING for r in self.records)

    def startable(self, now: float) -> TenantRecord | None:
        """A stopped slot to start again (its back-off over), or a new one under
        max_processes; None when neither."""
        own = [r for r in self.records if not r.retired]
        for record in own:
            if record.start_task is not None:
                continue
            if record.state is S.BACKOFF and record.backoff_until <= now:
                advance(record, S.STOPPED)
            if record.state is S.STOPPED:
                return record
        if len(own) < self.tenant.capacity.max_processes:
            return self.new_record()
        return None

    def why_not_started(self, now: float) -> str:
        waits = [r.backoff_until - now for r in self.records if r.state is S.BACKOFF]
        if waits:
            return (f"tenant {self.tenant.name} is crash-looping; retrying in "
                    f"{max(0.0, min(waits)):.1f}s")
        return f"tenant {self.tenant.name} cannot start now"

    # --- slots -------------------------------------------------------------------------------
    def take(self) -> TenantRecord | None:
        """A slot on the least busy process with room, unless older requests wait."""
        if len(self.queue):
            return None
        record = pick_process(self.records, self.tenant.capacity.max_concurrency)
        if record is not None:
            record.in_flight += 1
            record.activity += 1
        return record

    def hand_over(self, now: float) -> None:
        """Give free slots to the oldest waiters (a process got ready or a request ended)."""
        limit = self.tenant.capacity.max_concurrency
        while len(self.queue):
            record = pick_process(self.records, limit)
            if record is None:
                return
            future, waited = self.queue.pop(now)
            if future.done():
                continue
            record.in_flight += 1
            record.activity += 1
            self.queue_wait_total += waited
            future.set_result(record)

    async def wait(self, now: float, limit: float) -> TenantRecord:
        """Queue for a slot (FIFO); QueueFull at once when the queue is full, QueueTimeout
        after `limit` seconds."""
        if not may_queue(len(self.queue), self.tenant.capacity.max_queue):
            self.refused += 1
            raise QueueFull(f"tenant {self.tenant.name}: queue full "
                            f"({self.tenant.capacity.max_queue} waiting)")
        future: asyncio.Future[TenantRecord] = asyncio.get_running_loop().create_future()
        self.queue.push(future, now)
        self.queued_total += 1
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            if not self._give_up(future):
                return future.result()  # the slot came at the last moment
            self.timed_out += 1
            raise QueueTimeout(f"tenant {self.tenant.name}: no process free within "
                               f"{limit:g}s") from None
        except BaseException:
            if not self._give_up(future) and future.exception() is None:
                future.result().release()  # cancelled after the slot came: give it back
            raise

    def _give_up(self, future: asyncio.Future[TenantRecord]) -> bool:
        """True when `future` had no slot yet (it is out of the queue now)."""
        if future.done():
            return False
        self.queue.remove(future)
        future.cancel()
        return True

    def fail_waiters(self, exc: BaseException) -> None:
        """The tenant cannot start: every waiter gets `exc` now, rather than a timeout."""
        while len(self.queue):
            future, _ = self.queue.pop(0.0)
            if not future.done():
                future.set_exception(exc)

    def status(self, now: float, wall_offset: float) -> dict[str, object]:
        """The tenant's row for metrics and `navigator status`: the first serving process
        stands for the tenant (state, pid, port), counts cover them all."""
        records = self.records
        serving = [r for r in records if r.state in SERVING]
        lead = next((r for r in serving if not r.retired), None) or \
            (serving[0] if serving else (records[0] if records else None))
        row: dict[str, object] = record_status(lead, wall_offset) if lead is not None else {
            "name": self.tenant.name, "path": self.tenant.path, "state": "stopped",
            "pid": None, "port": None, "started_at": None, "last_request": None}
        last = max((r.last_active for r in records), default=0.0)
        row.update({
            "name": self.tenant.name, "path": self.tenant.path, "retired": self.retired,
            "last_request": last + wall_offset if last else None,
            "in_flight": sum(r.in_flight - r.websockets for r in records),
            "websockets": sum(r.websockets for r in records),
            "pids": [r.child.pid for r in records if r.child is not None],
            "processes": sum(1 for r in records if r.state in RUNNING),
            "busy": sum(1 for r in serving if r.in_flight),
            "idle": sum(1 for r in serving if not r.in_flight),
            "queue": len(self.queue), "queue_oldest": self.queue.oldest_wait(now),
            "queued_total": self.queued_total, "queue_wait_total": self.queue_wait_total,
            "refused": self.refused, "timed_out": self.timed_out, "recycled": self.recycled,
        })
        return row
