"""The supervisor's pools in-process with real tenant processes: slots, the queue's limits,
a crash of one process among several, rolling restarts by name, websocket slots."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from navigator.config.runtime import Capacity
from navigator.tenants.supervisor import (
    QueueFull,
    QueueTimeout,
    Supervisor,
    TenantLaunchError,
)
from tests.fixtures.apps.support import (
    FAST,
    http_get,
    make_config,
    make_tenant,
    our_descendants,
    pid_alive,
    run,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


async def pid_of(port: int | None, name: str) -> int:
    assert port is not None
    status, body = await http_get(port, f"/{name}/pid")
    assert status == 200
    return int(body)


def test_slots_queue_in_order_and_give_up_after_the_queue_timeout(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("q", tmp_path, capacity=Capacity(
            max_processes=1, max_concurrency=1, max_queue=2, queue_timeout=0.3))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        await sup.ensure_ready(tenant)  # booted (a boot is longer than this queue_timeout)
        first = await sup.acquire(tenant)
        assert sup.acquire_now(tenant) is None  # full
        second = asyncio.ensure_future(sup.acquire(tenant))
        third = asyncio.ensure_future(sup.acquire(tenant))
        await wait_for(lambda: sup.status()[0]["queue"] == 2)
        with pytest.raises(QueueFull):
            await sup.acquire(tenant)  # the queue holds two: refused at once
        first.release()
        granted = await second  # first in, first out
        assert granted is first  # the one process
        assert not third.done()
        with pytest.raises(QueueTimeout):
            await third
        granted.release()
        row = sup.status()[0]
        assert (row["queue"], row["refused"], row["timed_out"], row["queued_total"]) == \
            (0, 1, 1, 2)
        assert row["in_flight"] == 0
        await sup.shutdown(2.0)
    run(body)


def test_a_crash_restarts_only_that_process(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("c", tmp_path, capacity=Capacity(max_processes=2,
                                                              min_instances=2))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        await sup.start()
        await wait_for(lambda: sup.status()[0]["idle"] == 2, message="two ready")
        a, b = sup._pools[tenant.path].records
        pid_a, pid_b = await pid_of(a.port, "c"), await pid_of(b.port, "c")
        await http_get(a.port or 0, "/c/crash")
        await wait_for(lambda: not pid_alive(pid_a))
        # min_instances: the crashed one comes back; the other one never stopped
        await wait_for(lambda: a.serving and a.child is not None and a.child.pid != pid_a,
                       message="the crashed one restarted")
        assert b.serving
        assert await pid_of(b.port, "c") == pid_b
        assert await pid_of(a.port, "c") not in (pid_a, pid_b)
        await sup.shutdown(2.0)
        assert our_descendants() == []
    run(body)


def test_rolling_restart(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("r", tmp_path, capacity=Capacity(max_processes=2))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        assert (await sup.restart_tenant(tenant)).replaced == 0  # not running: nothing
        held = await sup.acquire(tenant)  # a request in flight across the restart
        old_pid = await pid_of(held.port, "r")
        both = await asyncio.gather(sup.restart_tenant(tenant), sup.restart_tenant(tenant))
        assert both[0] == both[1]  # one restart, shared
        result = both[0]
        assert (result.tenant, result.replaced, len(result.pids)) == ("r", 1, 1)
        assert old_pid not in result.pids
        fresh = sup.acquire_now(tenant)
        assert fresh is not None
        assert fresh is not held
        assert await pid_of(fresh.port, "r") == result.pids[0]  # new requests: new process
        fresh.release()
        assert pid_alive(old_pid)  # still answering its request
        held.release()
        await wait_for(lambda: not pid_alive(old_pid), message="the old one drained")
        assert sup.status()[0]["recycled"] == 1
        await sup.shutdown(2.0)
    run(body)


def test_a_failed_rolling_restart_keeps_the_old_process(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("f", tmp_path)
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        port = await sup.ensure_ready(tenant)
        pid = await pid_of(port, "f")
        (tmp_path / "broken").touch()
        broken = make_tenant("f", tmp_path, env={"REQUIRE_FILE": str(tmp_path / "absent")})
        sup._pools[tenant.path].tenant = broken  # the next process would not boot
        with pytest.raises(TenantLaunchError, match="old ones keep serving"):
            await sup.restart_tenant(tenant)
        assert await pid_of(sup.ready_port(tenant), "f") == pid
        await sup.shutdown(2.0)
    run(body)


def test_a_websocket_keeps_its_slot_until_it_closes(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("w", tmp_path, capacity=Capacity(max_concurrency=1,
                                                              queue_timeout=0.2))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        await sup.ensure_ready(tenant)
        lease = await sup.acquire(tenant)
        lease.tunnel_opened()  # the exchange became a tunnel: the exchange's end is not it
        with pytest.raises(QueueTimeout):
            await sup.acquire(tenant)
        assert sup.status()[0]["websockets"] == 1
        lease.tunnel_closed()
        again = await sup.acquire(tenant)
        assert again is lease
        again.release()
        await sup.shutdown(2.0)
    run(body)


class CountStarts:
    """TenantEvents that counts process starts."""

    def __init__(self) -> None:
        self.started = 0

    def tenant_started(self, tenant: str) -> None:
        self.started += 1

    def tenant_ready(self, tenant: str, cold_start: float) -> None:
        """Not needed here."""

    def tenant_stopped(self, tenant: str, reason: str) -> None:
        """Not needed here."""

    def tenant_crashed(self, tenant: str) -> None:
        """Not needed here."""


def test_concurrent_first_requests_share_one_start(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("first", tmp_path, capacity=Capacity(max_processes=3))
        events = CountStarts()
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST, events=events)
        leases = await asyncio.gather(*(sup.acquire(tenant) for _ in range(10)))
        assert events.started == 1  # the first boot runs alone; all ten waited for it
        assert {id(lease) for lease in leases} == {id(leases[0])}
        for lease in leases:
            lease.release()
        await sup.shutdown(2.0)
    run(body)


def test_a_replaced_process_keeps_its_websockets_only_up_to_the_drain_limit(
        tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("d", tmp_path, capacity=Capacity(drain_timeout=0.5))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        lease = await sup.acquire(tenant)
        old_pid = await pid_of(lease.port, "d")
        lease.tunnel_opened()  # a websocket that will not close by itself
        result = await sup.restart_tenant(tenant)
        assert result.replaced == 1
        assert pid_alive(old_pid)  # the tunnel keeps it for now
        await wait_for(lambda: not pid_alive(old_pid), message="stopped at the drain limit")
        lease.tunnel_closed()  # the client side notices later: nothing breaks
        assert await pid_of(sup.ready_port(tenant), "d") == result.pids[0]
        await sup.shutdown(2.0)
    run(body)


def test_a_reload_starts_new_min_instances_and_idle_keeps_them(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("m", tmp_path)
        config = make_config(tmp_path, (tenant,))
        sup = Supervisor(config, policy=FAST)
        await sup.start()
        assert sup.status() == []  # min_instances 0: nothing before a request
        warm = make_tenant("m", tmp_path, capacity=Capacity(max_processes=3, min_instances=2,
                                                            idle_timeout=0.2))
        await sup.apply_config(make_config(tmp_path, (warm,), pools=config.pools))
        await wait_for(lambda: sup.status()[0]["idle"] == 2, message="two warm processes")
        extra = [await sup.acquire(warm) for _ in range(3)]  # busy: a third one starts
        await wait_for(lambda: sup.status()[0]["processes"] == 3, message="a third")
        for lease in extra:
            lease.release()
        await wait_for(lambda: sup.status()[0]["processes"] == 2, message="the extra idled out")
        assert sup.status()[0]["idle"] == 2  # the minimum stays, though idle for longer
        await sup.shutdown(2.0)
        assert our_descendants() == []
    run(body)
