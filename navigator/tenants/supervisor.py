"""Tenants: a pool of 1..N processes each, slots for requests, scaling, recycling, reload
and rolling restarts.

Room: I/O (processes through `ProcessRunner`, timers, futures). Reference sections 10.3-10.9
and 15, plus per-tenant pools (issue 17). The request path calls `acquire_now` (sync fast
path) or `acquire` and releases the slot it got (`TenantRecord.release`, or the tunnel
calls); the server calls `start`, `apply_config`, `restart_tenant`, `shutdown`.

Invariants:
- one `TenantPool` per tenant path; a process is a `TenantRecord` with one state field
  (see `processes`); dispatch decisions (least busy, when to start, may a request queue,
  when to recycle) are `dispatch`'s pure functions;
- every slot handed out is released exactly once (by the exchange, or by the tunnel it
  became); a request never waits longer than the tenant's `queue_timeout` and a full queue
  answers at once: nothing hangs;
- a tenant's first start runs alone and concurrent first requests share it; more processes
  start only while every serving one is busy and requests wait, up to `max_processes`;
- `min_instances` processes start at boot and after a reload and are never idle-stopped;
  the others stop after the tenant's idle timeout;
- a replaced process (reload with a new command/args/env, `max_requests`, memory, rolling
  restart) serves until its replacement is ready, then takes no new request, finishes the
  ones it has and stops; open websockets keep it up to `drain_timeout`;
- nothing is left running after `shutdown`: tenants first (in parallel), then managed
  processes, each SIGTERM → grace → SIGKILL of the whole group.

Must not touch: routing, the upstream pool (told about exits through listeners), server
hooks (the server runs those).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from navigator.config.runtime import Config, Tenant
from navigator.tenants.dispatch import processes_to_start
from navigator.tenants.leftovers import ChildLedger
from navigator.tenants.managed import ManagedProcesses
from navigator.tenants.pool import QueueFull, QueueTimeout, TenantPool
from navigator.tenants.processes import ExitListener, ProcessRunner
from navigator.tenants.procs import OrphanReaper
from navigator.tenants.recycling import watch_memory
from navigator.tenants.tenantstate import (
    RUNNING,
    SERVING,
    TRANSITIONS,
    NoEvents,
    SupervisorPolicy,
    TenantEvents,
    TenantHookFailed,
    TenantLaunchError,
    TenantRecord,
    TenantState,
    TenantUnavailable,
    advance,
    crash_outcome,
    pidfile_path,
)

log = logging.getLogger("navigator.supervisor")

S = TenantState
__all__ = ["RUNNING", "SERVING", "TRANSITIONS", "ExitListener", "QueueFull", "QueueTimeout",
           "RestartResult", "Supervisor", "SupervisorPolicy", "TenantHookFailed",
           "TenantLaunchError", "TenantRecord", "TenantState", "TenantUnavailable",
           "UnknownTenant", "advance", "crash_outcome", "pidfile_path"]


class UnknownTenant(LookupError):
    """A restart asked of a server that is shutting down (or a tenant it does not know)."""


@dataclass(frozen=True, slots=True)
class RestartResult:
    tenant: str
    replaced: int  # processes replaced by new ones
    pids: tuple[int, ...]  # the new processes


class Supervisor:
    """Owns every tenant pool and managed process of one server."""

    def __init__(self, config: Config, *, environ: Mapping[str, str] | None = None,
                 policy: SupervisorPolicy | None = None,
                 events: TenantEvents | None = None,
                 ledger: ChildLedger | None = None) -> None:
        self.config = config
        self.policy = policy or SupervisorPolicy()
        self.events: TenantEvents = events or NoEvents()
        self._environ = dict(os.environ if environ is None else environ)
        self._pools: dict[str, TenantPool] = {}
        self._removed: list[TenantPool] = []  # tenants a reload removed, still draining
        self._closing = False
        self._restarts: dict[str, asyncio.Task[RestartResult]] = {}
        self._runner = ProcessRunner(
            lambda: self.config, environ=self._environ, policy=self.policy,
            events=self.events, ledger=ledger, records=self._all_records,
            siblings=self._has_siblings, on_exit=self._exited, on_idle=self._idle_due)
        self._reaper = OrphanReaper()
        self.managed = ManagedProcesses(self._environ, self.policy, ledger)

    # --- server lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Managed processes (in order, start_delay not blocking), the PID-1 reaper, each
        tenant's `min_instances`, the memory watch."""
        self._reaper.start()
        await self.managed.apply(self.config)
        self._warm(self.config)
        self._runner.spawn_task(watch_memory(lambda: list(self._pools.values()),
                                             self._recycle, lambda: self._closing))

    def add_exit_listener(self, callback: ExitListener) -> None:
        self._runner.listeners.append(callback)

    async def apply_config(self, config: Config) -> None:
        """Reload diff: unchanged tenants keep their processes; a tenant whose command, args
        or env changed gets a rolling restart; removed ones stop once their requests are
        done."""
        self.config = config
        self._runner.ports.reconfigure(config.pools.start_port, config.pools.port_count)
        wanted = {tenant.path: tenant for tenant in config.tenants}
        for path, pool in list(self._pools.items()):
            tenant = wanted.get(path)
            if tenant is None:
                del self._pools[path]
                self._remove(pool)
                continue
            changed = tenant.spawn_key() != pool.tenant.spawn_key()
            pool.tenant = tenant
            running = []
            for record in list(pool.records):
                if record.retired:
                    continue
                if not changed:
                    record.tenant = tenant
                elif record.state in RUNNING or record.start_task is not None:
                    running.append(record)
                else:
                    pool.drop(record)  # stopped: the next start uses the new definition
            if running:
                log.info("tenant %s changed: rolling restart of %d process(es)",
                         tenant.name, len(running))
                self._runner.spawn_task(self._replace(pool, running, "replaced by reload"))
        self._warm(config)
        await self.managed.apply(config)

    async def shutdown(self, grace: float, *, hooks_within: float | None = None) -> None:
        """Stop every tenant (stop hooks, then SIGTERM → grace → SIGKILL), then managed ones.

        `hooks_within` cuts the tenants' stop hooks off (their trees killed) so the whole
        stop fits the shutdown budget (shutdownplan)."""
        self._closing = self._runner.idle.closed = True
        self._reaper.stop()
        for pool in self._every_pool():
            pool.fail_waiters(TenantUnavailable("server shutting down"))
        records = self._all_records()
        for record in records:
            self._runner.idle.cancel(record)
        hook_runners = {id(pool.serving_any()) for pool in self._every_pool()}  # hooks: once
        await asyncio.gather(*(self._runner.stop_for_shutdown(r, grace, hooks_within,
                                                              id(r) in hook_runners)
                               for r in records), return_exceptions=True)
        for record in records:
            if record.start_task is not None:
                record.start_task.cancel()
        for task in list(self._runner.tasks):
            task.cancel()
        await self.managed.stop_all(grace)

    # --- request path --------------------------------------------------------------------------
    def _lookup(self, tenant: Tenant) -> TenantPool:
        pool = self._pools.get(tenant.path)
        if pool is not None:
            return pool
        for removed in self._removed:  # a request routed by an older snapshot
            if removed.tenant.path == tenant.path:
                return removed
        pool = TenantPool(tenant, self._released)  # first request (or a stale snapshot's)
        self._pools[tenant.path] = pool
        return pool

    def acquire_now(self, tenant: Tenant) -> TenantRecord | None:
        """A slot on a ready process at once (the fast path), or None: call `acquire`."""
        pool = self._pools.get(tenant.path)
        if pool is None:
            return None
        record = pool.take()
        if record is not None and record.in_flight > 1 and \
                pool.tenant.capacity.max_processes > 1:
            self._scale(pool, 0)  # even the least busy process was busy: grow
        return record

    async def acquire(self, tenant: Tenant) -> TenantRecord:
        """A slot on a ready process, starting one or queueing as needed. Raises
        TenantUnavailable (503: back-off, queue full or too long a wait, shutting down,
        removed) or TenantLaunchError (the process could not start)."""
        if self._closing:
            raise TenantUnavailable("server shutting down")
        pool = self._lookup(tenant)
        record = self.acquire_now(tenant)
        if record is not None:
            return record
        if pool.retired:
            raise TenantUnavailable(f"tenant {tenant.name} was removed")
        self._scale(pool, len(pool.queue) + 1)
        if not pool.live():
            raise TenantUnavailable(pool.why_not_started(asyncio.get_running_loop().time()))
        loop = asyncio.get_running_loop()
        try:
            return await pool.wait(loop.time(), pool.tenant.capacity.queue_timeout)
        except QueueTimeout:
            if pool.any_serving():
                raise
            raise QueueTimeout("startup timeout") from None  # a boot longer than the wait

    async def ensure_ready(self, tenant: Tenant) -> int:
        """Make sure one process of `tenant` serves; its port (takes no slot)."""
        pool = self._lookup(tenant)
        while True:
            if self._closing:
                raise TenantUnavailable("server shutting down")
            serving = pool.serving()
            if serving:
                port = min(serving, key=lambda r: r.in_flight).port
                assert port is not None  # serving implies a port
                return port
            self._scale(pool, 1)
            starting = [r.start_task for r in pool.live() if r.start_task is not None]
            if starting:
                await _start_outcome(starting[0])
                continue
            stopping = [r.stop_task for r in pool.records if r.stop_task is not None]
            if stopping:
                await asyncio.shield(stopping[0])
                continue
            raise TenantUnavailable(pool.why_not_started(asyncio.get_running_loop().time()))

    def ready_port(self, tenant: Tenant) -> int | None:
        pool = self._pools.get(tenant.path)
        if pool is None:
            return None
        serving = pool.serving()
        return serving[0].port if serving else None

    def _released(self, pool: TenantPool, record: TenantRecord) -> None:
        """A slot came back (`TenantRecord.release`)."""
        loop = asyncio.get_running_loop()
        now = record.last_active = loop.time()
        record.touched = next(self._runner.use_order)
        if len(pool.queue):
            pool.hand_over(now)
        if record.recycle_at and record.served >= record.recycle_at and not record.recycling:
            self._recycle(pool, record, "max_requests")
        if record.busy:
            return
        if record.retired:
            if record.state in SERVING:
                # `_retire` left the reason there until the stop begins
                self._runner.spawn_task(self._runner.stop_with_hooks(record,
                                                                     record.stop_reason))
        elif record.idle_handle is None:
            self._runner.idle.arm(record)
        if self._runner.pool_limit.waiting:
            self._runner.pool_limit.changed()

    # --- scaling -------------------------------------------------------------------------------
    def _scale(self, pool: TenantPool, waiting: int) -> None:
        """Start what `dispatch.processes_to_start` asks for."""
        if pool.retired or self._closing:
            return
        live = pool.live()
        serving = [r for r in live if r.state in SERVING]
        count = processes_to_start(
            live=len(live), starting=pool.starting(),
            serving=len(serving), idle=sum(1 for r in serving if r.in_flight == 0),
            waiting=waiting, max_processes=pool.tenant.capacity.max_processes)
        for _ in range(count):
            record = pool.startable(asyncio.get_running_loop().time())
            if record is None:
                return
            self._launch(pool, record)

    def _launch(self, pool: TenantPool, record: TenantRecord) -> asyncio.Task[int]:
        task = self._runner.launch(record)
        task.add_done_callback(functools.partial(self._start_settled, pool, record))
        return task

    def _start_settled(self, pool: TenantPool, record: TenantRecord,
                       task: asyncio.Task[int]) -> None:
        if self._closing:
            return
        failed = task.cancelled() or task.exception() is not None
        if not failed:
            if record.retired and not record.busy:  # replaced while it was booting
                self._runner.spawn_task(self._runner.stop_with_hooks(record,
                                                                     record.stop_reason))
            pool.hand_over(asyncio.get_running_loop().time())
            self._ensure_min(pool)
            if len(pool.queue):
                self._scale(pool, len(pool.queue))
            return
        if not pool.live():  # nothing else will serve the waiters: tell them now
            exc = task.exception() if not task.cancelled() else None
            pool.fail_waiters(exc if exc is not None
                              else TenantUnavailable("start abandoned"))

    def _warm(self, config: Config) -> None:
        """Start `min_instances` of every tenant (boot, reload)."""
        for tenant in config.tenants:
            if tenant.capacity.min_instances:
                self._ensure_min(self._lookup(tenant))

    def _ensure_min(self, pool: TenantPool) -> None:
        if pool.retired or self._closing:
            return
        missing = pool.tenant.capacity.min_instances - len(pool.live())
        if missing <= 0:
            return
        first = not pool.any_serving()
        for _ in range(1 if first else missing):  # the first boot runs alone
            if first and pool.live():
                return
            record = pool.startable(asyncio.get_running_loop().time())
            if record is None:
                return
            self._launch(pool, record)

    # --- exits, idle -------------------------------------------------------------------------
    def _exited(self, record: TenantRecord, expected: bool) -> None:
        pool = self._pool_of(record)
        if pool is None:
            return
        if record.retired or pool.retired:
            pool.drop(record)
            if pool.retired and not pool.records:
                with contextlib.suppress(ValueError):
                    self._removed.remove(pool)
            return
        if self._closing:
            return
        if len(pool.queue):
            self._scale(pool, len(pool.queue))
        if not expected and record.state is S.BACKOFF:  # crash loop: retry after the delay
            delay = record.backoff_until - asyncio.get_running_loop().time()
            asyncio.get_running_loop().call_later(max(0.0, delay), self._ensure_min, pool)
        else:
            self._ensure_min(pool)

    def _idle_due(self, record: TenantRecord) -> None:
        self._runner.spawn_task(self._idle_stop(record))

    async def _idle_stop(self, record: TenantRecord) -> None:
        """Several timers may fire in one loop turn: each check runs in its own task, and
        the stop marks its process DRAINING before its first await (the next check sees it)."""
        pool = self._pool_of(record)
        if pool is None or not pool.is_minimum(record):
            await self._runner.stop_with_hooks(record, "idle")

    # --- replacing processes -------------------------------------------------------------------
    async def restart_tenant(self, tenant: Tenant) -> RestartResult:
        """Rolling restart: start as many new processes as run, wait until ready, send new
        requests there, let the old ones finish (websockets up to `drain_timeout`), stop
        them. Concurrent calls share one restart; no process: nothing replaced. Raises
        TenantLaunchError when no new process came up (the old ones keep serving)."""
        if self._closing:
            raise UnknownTenant("the server is shutting down")
        name = tenant.name
        pool = self._lookup(tenant)
        running = self._restarts.get(name)
        if running is None:
            old = [r for r in pool.records
                   if not r.retired and (r.state in RUNNING or r.start_task is not None)]
            running = asyncio.get_running_loop().create_task(
                self._replace(pool, old, "rolling restart"))
            self._restarts[name] = running
            running.add_done_callback(lambda _: self._restarts.pop(name, None))
        return await asyncio.shield(running)

    async def _replace(self, pool: TenantPool, old: list[TenantRecord],
                       reason: str) -> RestartResult:
        """Start len(old) new processes; retire as many old ones as came up."""
        for record in old:
            record.recycling = True
        fresh = [pool.new_record() for _ in old]
        results = await asyncio.gather(*(self._launch(pool, r) for r in fresh),
                                       return_exceptions=True)
        ready = [r for r, result in zip(fresh, results, strict=True)
                 if not isinstance(result, BaseException)]
        for result in results:
            if isinstance(result, BaseException):
                log.error("tenant %s: a replacement process failed to start: %s",
                          pool.tenant.name, result)
        for record in old[:len(ready)]:
            self._retire(pool, record, reason)
        for record in old[len(ready):]:
            record.recycling = False
        if old and not ready:
            raise TenantLaunchError(f"tenant {pool.tenant.name}: no new process came up; "
                                    "the old ones keep serving")
        pool.recycled += len(ready) if old else 0
        pids = tuple(r.child.pid for r in ready if r.child is not None)
        log.info("tenant %s: %d process(es) replaced (%s)", pool.tenant.name,
                 min(len(ready), len(old)), reason)
        return RestartResult(pool.tenant.name, min(len(ready), len(old)), pids)

    def _recycle(self, pool: TenantPool, record: TenantRecord, why: str) -> None:
        record.recycling = True
        log.info("tenant %s: recycling pid %s (%s)", pool.tenant.name,
                 record.child.pid if record.child is not None else "-", why)
        self._runner.spawn_task(self._replace(pool, [record], "recycled"))

    def _retire(self, pool: TenantPool, record: TenantRecord, reason: str) -> None:
        """No new requests; stop once the ones it has are done (tunnels: `drain_timeout`)."""
        record.retired = True
        record.stop_reason = reason
        self._runner.idle.cancel(record)
        if record.state not in RUNNING:
            pool.drop(record)
            return
        if not record.busy and record.state in SERVING:
            self._runner.spawn_task(self._runner.stop_with_hooks(record, reason))
        record.idle_handle = asyncio.get_running_loop().call_later(
            record.tenant.capacity.drain_timeout, self._drain_over, record, reason)

    def _drain_over(self, record: TenantRecord, reason: str) -> None:
        record.idle_handle = None
        if record.child is not None and record.state is not S.STOPPING:
            log.info("tenant %s: drain limit reached, stopping pid %d with %d open",
                     record.tenant.name, record.child.pid, record.in_flight)
            self._runner.spawn_task(self._runner.terminate(record, reason))

    def _remove(self, pool: TenantPool) -> None:
        pool.retired = True
        self._removed.append(pool)
        pool.fail_waiters(TenantUnavailable(f"tenant {pool.tenant.name} was removed"))
        log.info("tenant %s removed: draining its processes", pool.tenant.name)
        for record in list(pool.records):
            self._retire(pool, record, "removed by reload")
        if not pool.records:
            self._removed.remove(pool)

    # --- misc --------------------------------------------------------------------------------
    def _every_pool(self) -> list[TenantPool]:
        return [*self._pools.values(), *self._removed]

    def _all_records(self) -> list[TenantRecord]:
        return [record for pool in self._every_pool() for record in pool.records]

    def _pool_of(self, record: TenantRecord) -> TenantPool | None:
        for pool in self._every_pool():
            if record in pool.records:
                return pool
        return None

    def _has_siblings(self, record: TenantRecord) -> bool:
        pool = self._pool_of(record)
        return pool is not None and any(r is not record and r.child is not None
                                        for r in pool.records)

    def status(self) -> list[dict[str, object]]:
        """One row per tenant (its pool: processes, busy/idle, queue, refusals, recycles)
        for metrics and the status page; a removed tenant still draining is `retired`."""
        loop_now = asyncio.get_running_loop().time()
        offset = time.time() - loop_now
        return [pool.status(loop_now, offset) for pool in self._every_pool()]

    def managed_status(self) -> list[dict[str, object]]:
        return self.managed.status()


async def _start_outcome(task: asyncio.Task[int]) -> None:
    """Wait for a start (shielded: other waiters share it); a start cancelled by the
    shutdown is TenantUnavailable to its waiters, not their own cancellation."""
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            raise TenantUnavailable("start abandoned: server shutting down") from None
        raise
