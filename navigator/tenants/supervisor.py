"""Tenant processes: start on demand, readiness, crash handling, idle stop, pool limit, reload.

Room: I/O (processes, timers, loopback probes). Reference sections 10.3-10.9 and 15.
The request path calls `ready_port` (sync fast path), `ensure_ready`, `request_started/
finished` and `websocket_opened/closed`; the server calls `start`, `apply_config`, `shutdown`.

Invariants:
- one `state` field per tenant record, changed only through `_set` against TRANSITIONS:
  stopped → starting → ready → draining (stop hooks running, still serving) → stopping →
  stopped; a process that dies unexpectedly goes to stopped, or to backoff when it keeps
  dying within `crash_window` of its start (1 s, 2 s, 4 s … capped, answered with 503);
- single flight: concurrent `ensure_ready` calls for one tenant share one start task;
- a start runs the `before_start` hooks (defaults, then the tenant's) and spawns only if
  they succeed (consecutive failures back off as quick crashes do); `start` hooks run
  alongside the boot; every tenant hook runs in its root;
- every child is watched: on exit its port is freed, exit listeners run, its cgroup is
  removed; the next request starts a fresh process;
- idle stop uses one timer per tenant (re-armed lazily from `last_active`, the end of the
  last request), never a periodic scan of all tenants; `pools.max_size` evicts the least
  recently used idle tenant or makes the start wait (both timers and the pool limit live in
  `capacity`; what a stop means stays here);
- readiness = any HTTP status line from `GET <health_path>` on 127.0.0.1:<port>, polled
  every 5 ms for the first 0.5 s, then backing off to 100 ms, so cold-start overhead stays
  close to the app's own boot time; a boot may take the tenant's `ready_timeout` (how long a
  request waits, `startup_timeout`, is the handler's business), then it is stopped;
- nothing is left running after `shutdown`: tenants first (in parallel), then managed
  processes, each SIGTERM → grace → SIGKILL of the whole group.

Must not touch: routing, the upstream pool (it is told about exits through listeners),
server hooks (the server runs those).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from navigator.config.runtime import Config, Tenant
from navigator.tenants.capacity import IdleTimers, PoolLimit
from navigator.tenants.launch import (
    close_cgroup,
    delete_pidfile,
    run_tenant_hooks,
    spawn_spec,
    wait_ready,
)
from navigator.tenants.leftovers import ChildLedger
from navigator.tenants.managed import ManagedProcesses
from navigator.tenants.ports import NoFreePort, PortAllocator
from navigator.tenants.procs import (
    ChildProcess,
    OnceLog,
    OrphanReaper,
    kill_pidfile,
    spawn,
    spawn_failure_reason,
)
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
    describe_stop,
    pidfile_path,
    record_status,
    state_of,
    stop_label,
)

log = logging.getLogger("navigator.supervisor")

ExitListener = Callable[[Tenant, int], None]
S = TenantState
__all__ = ["RUNNING", "SERVING", "TRANSITIONS", "ExitListener", "Supervisor",
           "SupervisorPolicy", "TenantHookFailed", "TenantLaunchError", "TenantRecord",
           "TenantState", "TenantUnavailable", "advance", "crash_outcome", "pidfile_path"]


class Supervisor:
    """Owns every tenant and managed process of one server."""

    def __init__(self, config: Config, *, environ: Mapping[str, str] | None = None,
                 policy: SupervisorPolicy | None = None,
                 events: TenantEvents | None = None,
                 ledger: ChildLedger | None = None) -> None:
        self.config = config
        self.policy = policy or SupervisorPolicy()
        self.events: TenantEvents = events or NoEvents()
        self._environ = dict(os.environ if environ is None else environ)
        self._records: dict[str, TenantRecord] = {}
        self._retired: list[TenantRecord] = []
        self._ports = PortAllocator(config.pools.start_port, config.pools.port_count)
        self._listeners: list[ExitListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._pool = PoolLimit(self._all_records, self._stop_with_hooks)
        self._idle = IdleTimers(lambda: self.config.pools.idle_timeout, self._idle_due)
        self._use_order = itertools.count(1)
        self._once = OnceLog()
        self._reaper = OrphanReaper()
        self._ledger = ledger  # records children so a killed server's leftovers get swept
        self.managed = ManagedProcesses(self._environ, self.policy, ledger)

    # --- server lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start managed processes (in order, start_delay not blocking) and the PID-1 reaper."""
        self._reaper.start()
        await self.managed.apply(self.config)

    def add_exit_listener(self, callback: ExitListener) -> None:
        self._listeners.append(callback)

    async def apply_config(self, config: Config) -> None:
        """Reload diff: unchanged tenants keep running; changed ones drain and restart on the
        next request; removed ones stop once their in-flight requests are done."""
        self.config = config
        self._ports.reconfigure(config.pools.start_port, config.pools.port_count)
        wanted = {tenant.path: tenant for tenant in config.tenants}
        for path, record in list(self._records.items()):
            tenant = wanted.get(path)
            if tenant is not None and tenant.spawn_key() == record.tenant.spawn_key():
                record.tenant = tenant
                continue
            if record.state is S.STOPPED or record.state is S.BACKOFF:
                if tenant is None:
                    del self._records[path]
                else:
                    self._records[path] = TenantRecord(tenant)
                continue
            log.info("tenant %s %s: draining the running process", record.tenant.name,
                     "removed" if tenant is None else "changed")
            del self._records[path]
            self._retire(record)
        await self.managed.apply(config)

    async def shutdown(self, grace: float, *, hooks_within: float | None = None) -> None:
        """Stop every tenant (stop hooks, then SIGTERM → grace → SIGKILL), then managed ones.

        `hooks_within` cuts the tenants' stop hooks off (their trees killed) so the whole
        stop fits the shutdown budget (shutdownplan).
        """
        self._closing = self._idle.closed = True
        self._reaper.stop()
        records = self._all_records()
        for record in records:
            self._idle.cancel(record)
        await asyncio.gather(*(self._stop_for_shutdown(r, grace, hooks_within)
                               for r in records), return_exceptions=True)
        for record in records:
            if record.start_task is not None:
                record.start_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.managed.stop_all(grace)

    async def _stop_for_shutdown(self, record: TenantRecord, grace: float,
                                 hooks_within: float | None) -> None:
        if record.child is None:
            return
        if record.state in SERVING:
            try:
                await asyncio.wait_for(self._run_tenant_hooks(record, "stop"), hooks_within)
            except TimeoutError:
                log.warning("tenant %s stop hooks cut off by the shutdown budget",
                            record.tenant.name)
        await self._terminate(record, "shutdown", grace)

    # --- request path --------------------------------------------------------------------------
    def _lookup(self, tenant: Tenant) -> TenantRecord:
        record = self._records.get(tenant.path)
        if record is not None and record.tenant is tenant:
            return record
        return self._lookup_slow(tenant, record)

    def _lookup_slow(self, tenant: Tenant, record: TenantRecord | None) -> TenantRecord:
        key = tenant.spawn_key()
        if record is not None and record.tenant.spawn_key() == key:
            return record
        for old in self._retired:  # a request routed by an older snapshot
            if old.tenant.path == tenant.path and old.tenant.spawn_key() == key:
                return old
        if record is None:  # first request for this tenant (or one only a stale snapshot has)
            record = TenantRecord(tenant)
            self._records[tenant.path] = record
        return record

    def ready_port(self, tenant: Tenant) -> int | None:
        record = self._records.get(tenant.path)
        if record is None or record.tenant is not tenant:
            record = self._lookup(tenant)
        return record.port if record.state in SERVING else None

    async def ensure_ready(self, tenant: Tenant) -> int:
        record = self._lookup(tenant)
        while True:
            if self._closing:
                raise TenantUnavailable("server shutting down")
            if record.state in SERVING and record.port is not None:
                return record.port
            if record.state is S.BACKOFF:
                remaining = record.backoff_until - asyncio.get_running_loop().time()
                if remaining > 0:
                    raise TenantUnavailable(f"tenant {tenant.name} is crash-looping; "
                                            f"retrying in {remaining:.1f}s")
                advance(record, S.STOPPED)
            if record.state is S.STOPPING and record.stop_task is not None:
                await asyncio.shield(record.stop_task)
                continue
            if record.retired and record.start_task is None:
                latest = self._records.get(tenant.path)  # the reload's definition
                record = self._lookup(latest.tenant if latest is not None else tenant)
                continue
            task = record.start_task
            if task is None:
                task = asyncio.get_running_loop().create_task(self._start(record))
                record.start_task = task
                task.add_done_callback(functools.partial(self._start_done, record))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and (current is None or not current.cancelling()):
                    raise TenantUnavailable("start abandoned: server shutting down") from None
                raise

    def request_started(self, tenant: Tenant) -> None:
        record = self._records.get(tenant.path)
        if record is None or record.tenant is not tenant:
            record = self._lookup(tenant)
        record.in_flight += 1
        record.activity += 1

    def request_finished(self, tenant: Tenant) -> None:
        record = self._records.get(tenant.path)
        if record is None or record.tenant is not tenant:
            record = self._lookup(tenant)
        if record.in_flight > 0:
            record.in_flight -= 1
        self._quiet(record)

    def websocket_opened(self, tenant: Tenant) -> None:
        if tenant.track_websockets:
            self._lookup(tenant).websockets += 1

    def websocket_closed(self, tenant: Tenant) -> None:
        if tenant.track_websockets:
            record = self._lookup(tenant)
            if record.websockets > 0:
                record.websockets -= 1
            self._quiet(record)

    def _quiet(self, record: TenantRecord) -> None:
        record.last_active = asyncio.get_running_loop().time()
        record.touched = next(self._use_order)
        if record.busy:
            return
        if record.retired:
            if record.state in SERVING:
                self._spawn(self._stop_with_hooks(record, "removed by reload"))
        elif record.idle_handle is None:
            self._idle.arm(record)
        if self._pool.waiting:
            self._pool.changed()

    # --- start -------------------------------------------------------------------------------
    def _start_done(self, record: TenantRecord, task: asyncio.Task[int]) -> None:
        if record.start_task is task:
            record.start_task = None
        if not task.cancelled():
            task.exception()  # retrieved: the caller may have timed out and left

    async def _start(self, record: TenantRecord) -> int:
        requested = asyncio.get_running_loop().time()  # cold start = first request → ready
        if self.config.pools.max_size:
            await self._pool.make_room(record, self.config.pools.max_size)
        else:
            advance(record, S.STARTING)
        tenant = record.tenant
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            port = self._ports.allocate(tenant.name)
        except NoFreePort as exc:
            advance(record, S.STOPPED)
            log.error("tenant %s cannot start: %s", tenant.name, exc)
            raise TenantLaunchError(str(exc)) from exc
        record.port = port
        try:
            if tenant.start_delay > 0:
                await asyncio.sleep(tenant.start_delay)
            if not await self._run_tenant_hooks(record, "before_start"):
                log.error("tenant %s not started: its before_start hooks failed", tenant.name)
                raise TenantHookFailed(f"tenant {tenant.name}: before_start hooks failed")
            await kill_pidfile(pidfile_path(tenant), tenant.root)
            child = await spawn(spawn_spec(tenant, port, self._environ, self.config.pools,
                                           self._once), self._ledger)
        except BaseException as exc:
            self._ports.release(port)
            record.port = None
            self._launch_failed(record, isinstance(exc, TenantHookFailed))
            if isinstance(exc, (OSError, ValueError, KeyError, subprocess.SubprocessError)):
                reason = spawn_failure_reason(exc)
                log.error("tenant %s could not be launched: %s", tenant.name, reason)
                raise TenantLaunchError(reason) from exc
            raise
        record.child = child
        record.spawned_at = loop.time()
        record.started_wall = time.time()
        record.watch_task = loop.create_task(self._watch(record, child))
        log.info("tenant %s starting: pid %d, port %d", tenant.name, child.pid, port)
        self.events.tenant_started(tenant.name)
        self._spawn(self._run_tenant_hooks(record, "start"))
        ready = await wait_ready(port, tenant.health_path, child, tenant.ready_timeout,
                                 self.policy, tenant.ready_on_5xx)
        if record.child is not child or child.returncode is not None:
            if record.watch_task is not None:
                await asyncio.shield(record.watch_task)
            raise TenantLaunchError(f"tenant {tenant.name} exited during startup")
        if not ready:
            log.error("tenant %s not ready after %gs (ready_timeout): stopping it",
                      tenant.name, tenant.ready_timeout)
            await self._terminate(record, "not ready")
            raise TenantLaunchError(f"tenant {tenant.name} did not become ready")
        if record.state is not S.STARTING:
            raise TenantUnavailable(f"tenant {tenant.name} stopped during startup")
        advance(record, S.READY)
        record.last_active = loop.time()
        record.touched = next(self._use_order)
        self._idle.arm(record)
        log.info("tenant %s ready on port %d after %.0f ms", tenant.name, port,
                 (loop.time() - began) * 1000)
        self.events.tenant_ready(tenant.name, loop.time() - requested)
        return port

    def _launch_failed(self, record: TenantRecord, hooks_failed: bool) -> None:
        """Back to stopped; failing before_start hooks back off as a crashing process does
        (a broken migration is not re-run by every maintenance-page refresh)."""
        delay = None
        if hooks_failed:
            record.quick_crashes, delay = crash_outcome(0.0, record.quick_crashes, self.policy)
        if delay is None:
            advance(record, S.STOPPED)
            return
        log.warning("tenant %s: before_start hooks keep failing; next try in %gs",
                    record.tenant.name, delay)
        record.backoff_until = asyncio.get_running_loop().time() + delay
        advance(record, S.BACKOFF)

    # --- exit, stop --------------------------------------------------------------------------
    async def _watch(self, record: TenantRecord, child: ChildProcess) -> None:
        status = await child.wait()
        self._on_exit(record, child, status)

    def _on_exit(self, record: TenantRecord, child: ChildProcess, status: int) -> None:
        if record.child is not child:
            return
        loop = asyncio.get_running_loop()
        tenant = record.tenant
        port = record.port
        record.child = None
        record.port = None
        if port is not None:
            self._ports.release(port)
        self._idle.cancel(record)
        run_time = loop.time() - record.spawned_at
        expected = record.state is S.STOPPING
        how = child.describe_exit(status)
        delay: float | None = None
        if expected:
            record.quick_crashes = 0
            log.info("tenant %s %s", tenant.name, describe_stop(status, how))
            self.events.tenant_stopped(tenant.name, record.stop_reason)
        else:
            self.events.tenant_crashed(tenant.name)
            record.quick_crashes, delay = crash_outcome(run_time, record.quick_crashes,
                                                        self.policy)
            log.warning("tenant %s exited unexpectedly after %.1fs: %s%s\n%s", tenant.name,
                        run_time, how, f"; restart back-off {delay:g}s" if delay else "",
                        "\n".join(f"  | {line}" for line in child.tail) or "  (no output)")
        if child.cgroup is not None:
            close_cgroup(tenant, child.cgroup)
        delete_pidfile(tenant)
        if delay is not None:
            record.backoff_until = loop.time() + delay
            advance(record, S.BACKOFF)
        else:
            advance(record, S.STOPPED)
        if record.retired:
            with contextlib.suppress(ValueError):
                self._retired.remove(record)
        if port is not None:
            for listener in list(self._listeners):
                try:
                    listener(tenant, port)
                except Exception:
                    log.exception("exit listener failed for tenant %s", tenant.name)
        self._pool.changed()

    async def _terminate(self, record: TenantRecord, reason: str,
                         grace: float | None = None) -> None:
        if record.stop_task is None:
            task = asyncio.get_running_loop().create_task(self._do_stop(record, reason, grace))
            record.stop_task = task
        await asyncio.shield(record.stop_task)

    async def _do_stop(self, record: TenantRecord, reason: str, grace: float | None) -> None:
        try:
            child = record.child
            if child is None:
                return
            if record.state is not S.STOPPING:
                advance(record, S.STOPPING)
                record.stop_reason = stop_label(reason)
            self._idle.cancel(record)
            log.info("stopping tenant %s (%s)", record.tenant.name, reason)
            await child.stop(self.policy.stop_grace if grace is None else grace)
            if record.watch_task is not None:
                await record.watch_task
        finally:
            record.stop_task = None

    async def _stop_with_hooks(self, record: TenantRecord, reason: str) -> None:
        """Reference 10.7: draining → stop hooks → re-check for requests → terminate."""
        if record.state is not S.READY:
            return
        advance(record, S.DRAINING)
        self._idle.cancel(record)
        seen = record.activity
        await self._run_tenant_hooks(record, "stop")
        if state_of(record) is not S.DRAINING:
            return  # exited meanwhile
        if (record.activity != seen or record.busy) and not record.retired:
            log.info("tenant %s: request arrived during stop hooks, staying up",
                     record.tenant.name)
            advance(record, S.READY)
            self._spawn(self._run_tenant_hooks(record, "start"))
            if not record.busy:
                self._idle.arm(record)
            return
        await self._terminate(record, reason)

    async def _run_tenant_hooks(self, record: TenantRecord, which: str) -> bool:
        return await run_tenant_hooks(self.config, record.tenant, record.port, which,
                                      self._environ)

    def _retire(self, record: TenantRecord) -> None:
        record.retired = True
        self._retired.append(record)
        if not record.busy and record.state in SERVING:
            self._spawn(self._stop_with_hooks(record, "replaced by reload"))

    def _idle_due(self, record: TenantRecord) -> None:
        self._spawn(self._stop_with_hooks(record, "idle"))

    # --- misc --------------------------------------------------------------------------------
    def _all_records(self) -> list[TenantRecord]:
        return [*self._records.values(), *self._retired]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor task failed", exc_info=task.exception())

    def status(self) -> list[dict[str, object]]:
        """Per-tenant facts for metrics and the status page."""
        offset = time.time() - asyncio.get_running_loop().time()
        return [record_status(record, offset) for record in self._all_records()]

    def managed_status(self) -> list[dict[str, object]]:
        return self.managed.status()

    async def stop_tenant(self, tenant: Tenant, reason: str) -> None:  # next request: fresh
        await self._terminate(self._lookup(tenant), reason)  # SIGTERM → grace → SIGKILL
