"""Tenant lifecycle vocabulary: states and their transition table, policy, per-tenant record.

Room: supervisor (data and small pure policies, plus the one-shot readiness probe). Split
out of `supervisor.py` so the state table can be read and unit-tested on its own.

Invariants:
- `advance` is the only writer of `TenantRecord.state` and refuses any move not in
  TRANSITIONS (a bug, not a runtime condition);
- `crash_outcome` is pure: the back-off policy is a function of run time and history.

Must not touch: processes, timers, configuration loading.
"""

from __future__ import annotations

import asyncio
import enum
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from navigator.config.runtime import Tenant
from navigator.config.shutdownplan import DEFAULT_STOP_GRACE
from navigator.tenants.procs import ChildProcess

LOOPBACK = "127.0.0.1"


class TenantLaunchError(Exception):
    """The process could not be launched or died before becoming ready (→ 500)."""

    status = 500
    reason = "Failed to start application"


class TenantUnavailable(Exception):
    """Temporarily refused: crash-loop back-off, pool full, shutting down (→ 503)."""

    status = 503
    reason = "Service Unavailable"


class TenantHookFailed(TenantUnavailable):
    """A before_start hook failed, so the process was not spawned (→ 503; the next request
    runs the hooks again)."""


class TenantState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"  # stop hooks running; still serving, a request cancels the stop
    STOPPING = "stopping"  # process being terminated
    BACKOFF = "backoff"  # crashed repeatedly; refuse starts until backoff_until


S = TenantState
TRANSITIONS: Mapping[TenantState, frozenset[TenantState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.READY, S.STOPPING, S.STOPPED, S.BACKOFF}),
    S.READY: frozenset({S.DRAINING, S.STOPPING, S.STOPPED, S.BACKOFF}),
    S.DRAINING: frozenset({S.READY, S.STOPPING, S.STOPPED, S.BACKOFF}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.BACKOFF: frozenset({S.STOPPED}),
}
RUNNING = frozenset({S.STARTING, S.READY, S.DRAINING, S.STOPPING})
SERVING = frozenset({S.READY, S.DRAINING})


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    """Tuning knobs (defaults follow the reference and common practice)."""

    stop_grace: float = DEFAULT_STOP_GRACE
    probe_first: float = 0.005
    probe_max: float = 0.1
    probe_fast_phase: float = 0.5  # keep polling at probe_first this long, then back off
    probe_timeout: float = 0.5
    crash_window: float = 10.0
    backoff_first: float = 1.0
    backoff_cap: float = 30.0
    restart_first: float = 1.0  # managed processes
    restart_cap: float = 30.0
    restart_reset_after: float = 60.0


def crash_outcome(run_time: float, quick_crashes: int,
                  policy: SupervisorPolicy) -> tuple[int, float | None]:
    """After an unexpected exit: (new quick-crash count, back-off delay or None).

    One quick crash restarts on the next request; each further consecutive one doubles the
    delay from `backoff_first` up to `backoff_cap`. A run longer than the window resets."""
    if run_time >= policy.crash_window:
        return 0, None
    quick = quick_crashes + 1
    if quick < 2:
        return quick, None
    return quick, min(policy.backoff_cap, policy.backoff_first * 2 ** (quick - 2))


class TenantEvents(Protocol):
    """Lifecycle observer (metrics). Called once per process event, never per request."""

    def tenant_started(self, tenant: str) -> None: ...
    def tenant_ready(self, tenant: str, cold_start: float) -> None: ...
    def tenant_stopped(self, tenant: str, reason: str) -> None: ...
    def tenant_crashed(self, tenant: str) -> None: ...


class NoEvents:
    """The observer when nobody listens (unit tests, tools)."""

    def tenant_started(self, tenant: str) -> None:
        pass

    def tenant_ready(self, tenant: str, cold_start: float) -> None:
        pass

    def tenant_stopped(self, tenant: str, reason: str) -> None:
        pass

    def tenant_crashed(self, tenant: str) -> None:
        pass


# The supervisor's stop reasons (log text) → the small label vocabulary of the metrics.
STOP_LABELS: Mapping[str, str] = {
    "idle": "idle", "shutdown": "shutdown", "not ready": "not_ready",
    "evicted (pool full)": "evicted", "removed by reload": "reload",
    "replaced by reload": "reload", "restart": "restart",
}


def stop_label(reason: str) -> str:
    return STOP_LABELS.get(reason, "other")


class TenantRecord:
    """Mutable bookkeeping for one tenant definition."""

    __slots__ = ("activity", "backoff_until", "child", "idle_handle", "in_flight",
                 "last_active", "port", "quick_crashes", "retired", "spawned_at", "start_task",
                 "started_wall", "state", "stop_reason", "stop_task", "tenant", "touched",
                 "watch_task", "websockets")

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.state = S.STOPPED
        self.child: ChildProcess | None = None
        self.port: int | None = None
        self.start_task: asyncio.Task[int] | None = None
        self.stop_task: asyncio.Task[None] | None = None
        self.watch_task: asyncio.Task[None] | None = None
        self.idle_handle: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.websockets = 0
        self.activity = 0  # bumped at every request start
        self.last_active = 0.0  # loop time a request last finished (or the process got ready)
        self.touched = 0  # order of last use, for LRU eviction (loop time can tie)
        self.spawned_at = 0.0  # loop time
        self.started_wall = 0.0
        self.quick_crashes = 0
        self.backoff_until = 0.0
        self.retired = False
        self.stop_reason = "other"  # metrics label of the stop in progress

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or (self.tenant.track_websockets and self.websockets > 0)


def record_status(record: TenantRecord, wall_offset: float) -> dict[str, object]:
    """One tenant's facts for metrics and the status page (`wall_offset` turns loop time
    into wall-clock time)."""
    running = record.child is not None
    return {
        "name": record.tenant.name, "path": record.tenant.path, "state": record.state.value,
        "pid": record.child.pid if record.child is not None else None,
        "port": record.port,
        "started_at": record.started_wall if running else None,
        "last_request": record.last_active + wall_offset if record.last_active else None,
        "in_flight": record.in_flight, "websockets": record.websockets,
        "retired": record.retired,
    }


def describe_stop(status: int, how: str) -> str:
    """An exit navigator asked for, in words. Exit status 0, or death by the SIGTERM we sent,
    is a clean stop: Puma and uvicorn drain and then re-raise SIGTERM, and a process without a
    handler simply ends on it. Anything else (SIGKILL after the grace period, a non-zero
    status) is reported as `how` (the child's own description of its exit)."""
    if status == 0 or status == -signal.SIGTERM:
        return "stopped cleanly"
    return f"stopped ({how})"


def state_of(record: TenantRecord) -> TenantState:
    """Re-read after an await (keeps type checkers from narrowing across suspension)."""
    return record.state


def advance(record: TenantRecord, new: TenantState) -> None:
    """The only writer of `record.state`."""
    if new not in TRANSITIONS[record.state]:
        raise RuntimeError(f"tenant {record.tenant.name}: {record.state.value} -> "
                           f"{new.value} not allowed")
    record.state = new


def pidfile_path(tenant: Tenant) -> Path:
    """The tenant's PIDFILE, relative to its root: its env's, else `tmp/pids/<name>.pid`.
    Rails (`rails server`) and Puma's generated config read `PIDFILE`; with their shared
    default `tmp/pids/server.pid`, a second tenant from the same directory exits with "A
    server is already running". The default gives each tenant its own (issue 18)."""
    for key, value in tenant.env:
        if key == "PIDFILE" and value:
            return tenant.root / value
    return tenant.root / "tmp" / "pids" / f"{tenant.name.replace('/', '-') or 'tenant'}.pid"


async def probe(port: int, head: bytes, limit: float, ready_on_5xx: bool = True) -> bool:
    """One readiness probe: True when the port answers with an HTTP status line (below 500
    unless `ready_on_5xx`)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), limit)
        writer.write(head)
        line = await asyncio.wait_for(reader.readline(), limit)
        return line.startswith(b"HTTP/") and (ready_on_5xx or line[9:10] != b"5")
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        if writer is not None:
            writer.close()
