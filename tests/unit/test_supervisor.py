"""Supervisor state tables and pure policies (no processes, no event loop)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from navigator.config.runtime import (
    Config,
    ListenAddress,
    LoggingSettings,
    ManagedProcess,
    Tenant,
    VectorSettings,
)
from navigator.tenants.cgroups import cgroup_name
from navigator.tenants.managed import definitions, restart_delay
from navigator.tenants.pool import TenantPool
from navigator.tenants.ports import NoFreePort, PortAllocator
from navigator.tenants.procs import credentials
from navigator.tenants.supervisor import (
    RUNNING,
    SERVING,
    TRANSITIONS,
    SupervisorPolicy,
    TenantRecord,
    TenantState,
    advance,
    crash_outcome,
    pidfile_path,
)
from navigator.tenants.tenantstate import describe_stop

S = TenantState
POLICY = SupervisorPolicy(crash_window=10.0, backoff_first=1.0, backoff_cap=30.0)


def tenant(**kwargs: object) -> Tenant:
    base: dict[str, object] = {"name": "t", "path": "/t/", "root": Path("/srv/t"),
                               "argv": ("app",), "env": ()}
    base.update(kwargs)
    return Tenant(**base)  # type: ignore[arg-type]


def test_every_state_has_transitions_and_targets_are_states() -> None:
    assert set(TRANSITIONS) == set(TenantState)
    for targets in TRANSITIONS.values():
        assert targets <= set(TenantState)
    assert SERVING <= RUNNING


@pytest.mark.parametrize(("path", "allowed"), [
    ([S.STARTING, S.READY, S.DRAINING, S.STOPPING, S.STOPPED], True),
    ([S.STARTING, S.READY, S.DRAINING, S.READY], True),  # idle stop cancelled
    ([S.STARTING, S.STOPPED], True),  # exited during startup
    ([S.STARTING, S.READY, S.BACKOFF, S.STOPPED, S.STARTING], True),
    ([S.READY], False),  # must start first
    ([S.STARTING, S.READY, S.STOPPING, S.READY], False),  # a stop is never undone
    ([S.STARTING, S.BACKOFF, S.STARTING], False),  # back-off ends in stopped first
])
def test_transition_paths(path: list[TenantState], allowed: bool) -> None:
    record = TenantRecord(tenant())
    for state in path[:-1]:
        advance(record, state)
    if allowed:
        advance(record, path[-1])
        assert record.state is path[-1]
    else:
        with pytest.raises(RuntimeError, match="not allowed"):
            advance(record, path[-1])


@pytest.mark.parametrize(("run_time", "quick", "expected"), [
    (60.0, 5, (0, None)),  # a long run resets the count
    (1.0, 0, (1, None)),  # first quick crash: restart on the next request
    (1.0, 1, (2, 1.0)),
    (1.0, 2, (3, 2.0)),
    (1.0, 3, (4, 4.0)),
    (1.0, 10, (11, 30.0)),  # capped
])
def test_crash_outcome(run_time: float, quick: int,
                       expected: tuple[int, float | None]) -> None:
    assert crash_outcome(run_time, quick, POLICY) == expected


@pytest.mark.parametrize(("status", "expected"), [
    (0, "stopped cleanly"),
    (-15, "stopped cleanly"),  # Puma/uvicorn re-raise SIGTERM after draining
    (-9, "stopped (killed by SIGKILL)"),  # did not go within the grace period
    (1, "stopped (exit status 1)"),
])
def test_describe_stop(status: int, expected: str) -> None:
    how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
    assert describe_stop(status, how) == expected


@pytest.mark.parametrize(("previous", "run_time", "expected"), [
    (0.0, 1.0, 1.0), (1.0, 1.0, 2.0), (16.0, 1.0, 30.0), (30.0, 1.0, 30.0), (8.0, 61.0, 1.0),
])
def test_managed_restart_delay(previous: float, run_time: float, expected: float) -> None:
    assert restart_delay(previous, run_time, SupervisorPolicy()) == expected


def test_busy_counts_websockets_only_when_tracked() -> None:
    tracked = TenantRecord(tenant())
    tracked.websockets = 1
    assert tracked.busy
    untracked = TenantRecord(tenant(track_websockets=False))
    untracked.websockets = 1
    assert not untracked.busy


def test_ports_lowest_free_and_release() -> None:
    taken_elsewhere = {4001}
    ports = PortAllocator(4000, 4, bindable=lambda p: p not in taken_elsewhere)
    assert ports.allocate("a") == 4000
    assert ports.allocate("b") == 4002
    assert ports.allocate("c") == 4003
    with pytest.raises(NoFreePort):
        ports.allocate("d")
    ports.release(4002)
    assert ports.allocate("d") == 4002
    assert ports.holder(4002) == "d"


def test_ports_reconfigure_keeps_held() -> None:
    ports = PortAllocator(4000, 2, bindable=lambda p: True)
    assert ports.allocate("a") == 4000
    ports.reconfigure(5000, 2)
    assert ports.allocate("b") == 5000
    assert ports.held == {4000: "a", 5000: "b"}


@pytest.mark.parametrize(("name", "expected"), [
    ("2025/boston", "2025_boston"), ("", "app"), ('a:b*c?"d<e>f|g\\h', "a_b_c__d_e_f_g_h"),
])
def test_cgroup_name(name: str, expected: str) -> None:
    assert cgroup_name(name) == expected


def test_credentials_default_group_is_primary() -> None:
    assert credentials("root", "") == (0, 0)
    assert credentials("", "root") == (None, 0)


def test_pidfile_path_relative_to_root() -> None:
    assert pidfile_path(tenant(env=(("PIDFILE", "tmp/pids/server.pid"),))) == Path(
        "/srv/t/tmp/pids/server.pid")
    # Unset: one per tenant (Rails/Puma's shared tmp/pids/server.pid stops a second tenant).
    assert pidfile_path(tenant(name="rails/alpha")) == Path("/srv/t/tmp/pids/rails-alpha.pid")


def test_vector_is_first_managed_process() -> None:
    config = Config(source=Path("/x.yml"), listen=ListenAddress("", 0),
                    managed_processes=(ManagedProcess("redis", "redis-server"),),
                    logging=LoggingSettings(vector=VectorSettings(True, "/tmp/v.sock",
                                                                  "vector.toml")))
    names = [(d.name, d.auto_restart, sock) for d, sock in definitions(config)]
    assert names == [("vector", True, "/tmp/v.sock"), ("redis", False, "")]


@pytest.mark.parametrize(("own", "expected"), [(None, 600.0), (5.0, 5.0), (0.0, None)])
def test_idle_timer_uses_the_tenant_s_own_timeout(own: float | None,
                                                   expected: float | None) -> None:
    """A tenant's (or on-demand helper's) `idle_timeout` wins over the pool's (0 = never
    idle-stop)."""
    import asyncio

    from navigator.config.runtime import Capacity
    from navigator.tenants.capacity import IdleTimers, idle_timeout_of
    from navigator.tenants.tenantstate import TenantRecord, TenantState, advance

    async def body() -> None:
        timers = IdleTimers(lambda record: idle_timeout_of(record, 600.0), lambda record: None)
        record = TenantRecord(tenant(capacity=Capacity(idle_timeout=own)))
        advance(record, TenantState.STARTING)
        advance(record, TenantState.READY)
        record.last_active = asyncio.get_running_loop().time()
        timers.arm(record)
        handle = record.idle_handle
        if expected is None:
            assert handle is None
        else:
            assert handle is not None
            assert handle.when() == pytest.approx(record.last_active + expected)
            timers.cancel(record)

    asyncio.run(body())


def test_a_ready_process_is_not_starting_while_its_start_task_winds_down() -> None:
    """A process turns ready a loop turn before its start task's done-callback clears
    `start_task`: a request that looks then must see it as serving, not as a start in
    progress, or a busy pool does not grow (supervisor._scale counts `starting()`)."""

    async def body() -> None:
        pool = TenantPool(tenant(), lambda pool, record: None)
        ready, booting, stopped = pool.new_record(), pool.new_record(), pool.new_record()
        advance(ready, S.STARTING)
        advance(ready, S.READY)
        advance(booting, S.STARTING)
        winding_down = asyncio.get_running_loop().create_task(asyncio.sleep(0, 1))
        ready.start_task = booting.start_task = stopped.start_task = winding_down
        # stopped: its start task waits for room under pools.max_size, not yet STARTING
        assert pool.starting() == 2
        ready.start_task = None
        assert pool.starting() == 2
        await winding_down

    asyncio.run(body())
