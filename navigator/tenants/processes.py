"""One tenant process's life: start (hooks, port, spawn, readiness), watch, stop.

Room: I/O (processes, timers, loopback probes), owned by the `Supervisor`, which decides
which process starts or stops and when; this only carries it out on one `TenantRecord`.

Invariants:
- one `state` field per record, changed only through `advance` against TRANSITIONS:
  stopped → starting → ready → draining (stop hooks running, still serving) → stopping →
  stopped; a process that dies unexpectedly goes to stopped, or to backoff when it keeps
  dying within `crash_window` of its start (1 s, 2 s, 4 s … capped, answered with 503);
- single flight: `launch` gives every caller the same start task of a record;
- a start runs the `before_start` hooks (defaults, then the tenant's) only when no other
  process of the tenant runs (a pool's second process must not re-run a migration), and
  spawns only if they succeed (consecutive failures back off as quick crashes do); `start`
  hooks run alongside the first boot; the `stop` hooks run when the last one stops;
- every child is watched: on exit its port is freed, exit listeners run, its cgroup is
  removed and the owner is told (`on_exit`);
- readiness = any HTTP status line from `GET <health_path>` on 127.0.0.1:<port> (see
  `launch.wait_ready`); a boot may take the tenant's `ready_timeout`, then it is stopped;
- `pools.max_size` counts processes: a start first makes room (`capacity.PoolLimit`).

Must not touch: routing, the upstream pool (it is told about exits through listeners), the
request queue (the supervisor's pools).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from navigator.config.runtime import Config, Tenant
from navigator.tenants.capacity import IdleTimers, PoolLimit, idle_timeout_of
from navigator.tenants.dispatch import recycle_limit
from navigator.tenants.launch import (
    close_cgroup,
    delete_pidfile,
    run_tenant_hooks,
    spawn_spec,
    wait_ready,
)
from navigator.tenants.leftovers import ChildLedger
from navigator.tenants.ports import NoFreePort, PortAllocator
from navigator.tenants.procs import (
    ChildProcess,
    OnceLog,
    kill_pidfile,
    spawn,
    spawn_failure_reason,
)
from navigator.tenants.tenantstate import (
    SERVING,
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
    state_of,
    stop_label,
)

log = logging.getLogger("navigator.supervisor")

ExitListener = Callable[[Tenant, int], None]
S = TenantState


class ProcessRunner:
    """Starts, watches and stops single tenant processes for the supervisor."""

    def __init__(self, config: Callable[[], Config], *, environ: Mapping[str, str],
                 policy: SupervisorPolicy, events: TenantEvents, ledger: ChildLedger | None,
                 records: Callable[[], list[TenantRecord]],
                 siblings: Callable[[TenantRecord], bool],
                 on_exit: Callable[[TenantRecord, bool], None],
                 on_idle: Callable[[TenantRecord], None]) -> None:
        self._config = config
        self._environ = environ
        self.policy = policy
        self.events = events
        self._ledger = ledger
        self._siblings = siblings  # does another process of the record's tenant run?
        self._on_exit_cb = on_exit  # (record, expected)
        initial = config()
        self.ports = PortAllocator(initial.pools.start_port, initial.pools.port_count)
        self.listeners: list[ExitListener] = []
        self.pool_limit = PoolLimit(records, self.stop_with_hooks)
        self.idle = IdleTimers(self._idle_timeout, on_idle)
        self.use_order = itertools.count(1)
        self.once = OnceLog()
        self._random = random.Random()
        self.tasks: set[asyncio.Task[Any]] = set()

    def _idle_timeout(self, record: TenantRecord) -> float:
        return idle_timeout_of(record, self._config().pools.idle_timeout)

    # --- start -------------------------------------------------------------------------------
    def launch(self, record: TenantRecord) -> asyncio.Task[int]:
        """The record's start task: the running one, or a new one."""
        task = record.start_task
        if task is None:
            task = asyncio.get_running_loop().create_task(self._start(record))
            record.start_task = task
            task.add_done_callback(functools.partial(self._start_done, record))
        return task

    def _start_done(self, record: TenantRecord, task: asyncio.Task[int]) -> None:
        if record.start_task is task:
            record.start_task = None
        if not task.cancelled():
            task.exception()  # retrieved: the caller may have timed out and left

    async def _start(self, record: TenantRecord) -> int:
        requested = asyncio.get_running_loop().time()  # cold start = first request → ready
        config = self._config()
        if config.pools.max_size:
            await self.pool_limit.make_room(record, config.pools.max_size)
        else:
            advance(record, S.STARTING)
        tenant = record.tenant
        loop = asyncio.get_running_loop()
        began = loop.time()
        first = not self._siblings(record)
        try:
            port = self.ports.allocate(tenant.name)
        except NoFreePort as exc:
            advance(record, S.STOPPED)
            log.error("tenant %s cannot start: %s", tenant.name, exc)
            raise TenantLaunchError(str(exc)) from exc
        record.port = port
        try:
            if tenant.start_delay > 0:
                await asyncio.sleep(tenant.start_delay)
            if first and not await self.run_hooks(record, "before_start"):
                log.error("tenant %s not started: its before_start hooks failed", tenant.name)
                raise TenantHookFailed(f"tenant {tenant.name}: before_start hooks failed")
            await kill_pidfile(pidfile_path(tenant, record.index), tenant.root)
            child = await spawn(spawn_spec(tenant, port, self._environ, config.pools,
                                           self.once, record.index), self._ledger)
        except BaseException as exc:
            self.ports.release(port)
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
        record.served = 0
        record.recycle_at = recycle_limit(tenant.capacity.max_requests, self._random.random())
        record.watch_task = loop.create_task(self._watch(record, child))
        log.info("tenant %s starting: pid %d, port %d%s", tenant.name, child.pid, port,
                 f" (process {record.index + 1})" if record.index else "")
        self.events.tenant_started(tenant.name)
        if first:
            self.spawn_task(self.run_hooks(record, "start"))
        ready = await wait_ready(port, tenant.health_path, child, tenant.ready_timeout,
                                 self.policy, tenant.ready_on_5xx)
        if record.child is not child or child.returncode is not None:
            if record.watch_task is not None:
                await asyncio.shield(record.watch_task)
            raise TenantLaunchError(f"tenant {tenant.name} exited during startup")
        if not ready:
            log.error("tenant %s not ready after %gs (ready_timeout): stopping it",
                      tenant.name, tenant.ready_timeout)
            await self.terminate(record, "not ready")
            raise TenantLaunchError(f"tenant {tenant.name} did not become ready")
        if record.state is not S.STARTING:
            raise TenantUnavailable(f"tenant {tenant.name} stopped during startup")
        advance(record, S.READY)
        record.last_active = loop.time()
        record.touched = next(self.use_order)
        self.idle.arm(record)
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
            self.ports.release(port)
        self.idle.cancel(record)
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
        delete_pidfile(tenant, record.index)
        if delay is not None:
            record.backoff_until = loop.time() + delay
            advance(record, S.BACKOFF)
        else:
            advance(record, S.STOPPED)
        if port is not None:
            for listener in list(self.listeners):
                try:
                    listener(tenant, port)
                except Exception:
                    log.exception("exit listener failed for tenant %s", tenant.name)
        self._on_exit_cb(record, expected)
        self.pool_limit.changed()

    async def terminate(self, record: TenantRecord, reason: str,
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
            self.idle.cancel(record)
            log.info("stopping tenant %s (%s)%s", record.tenant.name, reason,
                     f": process {record.index + 1}, pid {child.pid}" if record.index else "")
            await child.stop(self.policy.stop_grace if grace is None else grace)
            if record.watch_task is not None:
                await record.watch_task
        finally:
            record.stop_task = None

    async def stop_with_hooks(self, record: TenantRecord, reason: str) -> None:
        """Reference 10.7: draining → stop hooks (when it is the tenant's last process) →
        re-check for requests → terminate."""
        if record.state is not S.READY:
            return
        advance(record, S.DRAINING)
        self.idle.cancel(record)
        seen = record.activity
        if not self._siblings(record):
            await self.run_hooks(record, "stop")
        if state_of(record) is not S.DRAINING:
            return  # exited meanwhile
        if (record.activity != seen or record.busy) and not record.retired:
            log.info("tenant %s: request arrived during stop hooks, staying up",
                     record.tenant.name)
            advance(record, S.READY)
            if not self._siblings(record):
                self.spawn_task(self.run_hooks(record, "start"))
            if not record.busy:
                self.idle.arm(record)
            return
        await self.terminate(record, reason)

    async def stop_for_shutdown(self, record: TenantRecord, grace: float,
                                hooks_within: float | None, hooks: bool) -> None:
        """`hooks`: this is the one process of its tenant that runs the stop hooks."""
        if record.child is None:
            return
        if record.state in SERVING and hooks:
            try:
                await asyncio.wait_for(self.run_hooks(record, "stop"), hooks_within)
            except TimeoutError:
                log.warning("tenant %s stop hooks cut off by the shutdown budget",
                            record.tenant.name)
        await self.terminate(record, "shutdown", grace)

    async def run_hooks(self, record: TenantRecord, which: str) -> bool:
        return await run_tenant_hooks(self._config(), record.tenant, record.port, which,
                                      self._environ)

    # --- tasks -------------------------------------------------------------------------------
    def spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor task failed", exc_info=task.exception())
