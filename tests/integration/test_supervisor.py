"""Tenant processes for real: cold start, crashes, idle stop, pool limit, reload, shutdown."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from navigator.config.runtime import Hook, Pools, TenantHooks
from navigator.tenants.supervisor import (
    Supervisor,
    TenantHookFailed,
    TenantLaunchError,
    TenantState,
    TenantUnavailable,
)
from tests.fixtures.apps.support import (
    FAST,
    LOOPS,
    PY,
    OutputCapture,
    http_get,
    make_config,
    make_tenant,
    our_descendants,
    pid_alive,
    port_base,
    run,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def state_of(sup: Supervisor, name: str) -> str:
    return next((str(s["state"]) for s in sup.status() if s["name"] == name), "")


@pytest.mark.parametrize("loop", LOOPS)
def test_cold_start_single_flight(tmp_path: Path, loop: str) -> None:
    async def body() -> None:
        tenant = make_tenant("t1", tmp_path)
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        with OutputCapture() as out:
            ports = await asyncio.gather(*(sup.ensure_ready(tenant) for _ in range(20)))
            assert len(set(ports)) == 1
            assert sup.ready_port(tenant) == ports[0]
            status, body = await http_get(ports[0], "/t1/pid")
            assert status == 200
            assert [p.pid for p in our_descendants()] == [int(body)]
            await wait_for(lambda: ("t1", "stderr", "t1 says hello on stderr") in out.lines)
            listening = [line for line in out.lines if line[2].startswith("t1 listening")]
            assert listening == [("t1", "stdout", f"t1 listening on {ports[0]}")]
        await sup.shutdown(2.0)
        assert our_descendants() == []
    run(body, loop)


def test_slow_start_does_not_block_another_tenant(tmp_path: Path) -> None:
    async def body() -> None:
        slow = make_tenant("slow", tmp_path, env={"BOOT_DELAY": "5"})
        fast = make_tenant("fast", tmp_path)
        sup = Supervisor(make_config(tmp_path, (slow, fast)), policy=FAST)
        slow_task = asyncio.ensure_future(sup.ensure_ready(slow))
        await wait_for(lambda: state_of(sup, "slow") == "starting")
        port = await sup.ensure_ready(fast)
        assert (await http_get(port, "/fast/"))[0] == 200
        assert not slow_task.done()
        assert sup.ready_port(slow) is None
        await sup.shutdown(1.0)
        with pytest.raises((TenantLaunchError, TenantUnavailable)):
            await slow_task
        assert our_descendants() == []
    run(body)


def test_launch_failure_frees_port_and_reports(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        tenant = make_tenant("bad", tmp_path, argv=("/nonexistent/server", "{port}"))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        with pytest.raises(TenantLaunchError) as info:
            await sup.ensure_ready(tenant)
        assert info.value.status == 500
        assert sup._runner.ports.held == {}
        assert state_of(sup, "bad") == "stopped"
        await sup.shutdown(1.0)
    run(body)
    assert "command not found" in caplog.text


def test_failed_before_start_hook_spawns_nothing_and_frees_the_port(tmp_path: Path) -> None:
    """The hook passes once a flag file exists: the first start fails without a process,
    the next one runs the hook again and spawns."""
    flag = tmp_path / "migrations-fixed"
    gate = Hook(PY, ("-c", "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 5)",
                     str(flag)))

    async def body() -> None:
        tenant = make_tenant("gated", tmp_path, hooks=TenantHooks(before_start=(gate,)))
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        with pytest.raises(TenantHookFailed) as info:
            await sup.ensure_ready(tenant)
        assert info.value.status == 503
        assert sup._runner.ports.held == {}
        assert state_of(sup, "gated") == "stopped"
        assert our_descendants() == []
        flag.touch()
        port = await sup.ensure_ready(tenant)
        assert (await http_get(port, "/gated/"))[0] == 200
        await sup.shutdown(1.0)
    run(body)


def test_failing_before_start_hook_backs_off_like_a_crash(tmp_path: Path) -> None:
    """A before_start hook that keeps failing is not re-run by every request (each refresh
    of the maintenance page would run a broken migration again): the second consecutive
    failure puts the tenant in back-off, and requests meanwhile get 503 without a run."""
    runs = tmp_path / "runs"
    broken = Hook(PY, ("-c", "import sys; open(sys.argv[1], 'a').write('x'); sys.exit(5)",
                       str(runs)))

    async def body() -> None:
        tenant = make_tenant("broken", tmp_path, hooks=TenantHooks(before_start=(broken,)))
        sup = Supervisor(make_config(tmp_path, (tenant,)),
                         policy=replace(FAST, backoff_first=30.0))
        with pytest.raises(TenantHookFailed):
            await sup.ensure_ready(tenant)
        assert state_of(sup, "broken") == "stopped"  # one failure: the next request retries
        with pytest.raises(TenantHookFailed):
            await sup.ensure_ready(tenant)
        assert state_of(sup, "broken") == "backoff"
        with pytest.raises(TenantUnavailable, match="crash-looping") as info:
            await sup.ensure_ready(tenant)
        assert info.value.status == 503
        assert runs.read_text() == "xx"  # the third request ran nothing
        assert our_descendants() == []
        await sup.shutdown(1.0)
    run(body)


def test_crash_detected_port_freed_listener_told_and_restarted(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("c", tmp_path)
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        exits: list[tuple[str, int]] = []
        sup.add_exit_listener(lambda t, port: exits.append((t.name, port)))
        port = await sup.ensure_ready(tenant)
        first_pid = int((await http_get(port, "/c/pid"))[1])
        await http_get(port, "/c/crash")
        await wait_for(lambda: exits, message="exit listener")
        assert exits == [("c", port)]
        assert sup.ready_port(tenant) is None
        assert state_of(sup, "c") == "stopped"  # one quick crash: no back-off yet
        port2 = await sup.ensure_ready(tenant)
        assert int((await http_get(port2, "/c/pid"))[1]) != first_pid
        await sup.shutdown(2.0)
    run(body)


def test_crash_loop_backs_off_with_503(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("loop", tmp_path, env={"EXIT_AT_BOOT": "1"})
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST)
        for _ in range(2):
            with pytest.raises(TenantLaunchError):
                await sup.ensure_ready(tenant)
        assert state_of(sup, "loop") == "backoff"
        with pytest.raises(TenantUnavailable) as info:
            await sup.ensure_ready(tenant)
        assert info.value.status == 503
        # after the back-off a request tries again (and fails again, growing the delay)
        record = sup._pools[tenant.path].records[0]
        await wait_for(lambda: asyncio.get_running_loop().time() >= record.backoff_until)
        with pytest.raises(TenantLaunchError):
            await sup.ensure_ready(tenant)
        assert record.quick_crashes == 3
        await sup.shutdown(1.0)
    run(body)


def test_idle_stop_runs_stop_hooks_then_restarts_on_demand(tmp_path: Path) -> None:
    async def body() -> None:
        marker = tmp_path / "hooks.log"
        write = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"
        hooks = TenantHooks(start=(Hook(PY, ("-c", write, str(marker), "start ${name}")),),
                            stop=(Hook(PY, ("-c", write, str(marker), "stop ${name}")),))
        tenant = make_tenant("idle", tmp_path, hooks=hooks)
        pools = Pools(start_port=port_base(), port_count=60, idle_timeout=0.3)
        sup = Supervisor(make_config(tmp_path, (tenant,), pools=pools), policy=FAST)
        lease = await sup.acquire(tenant)
        pid = int((await http_get(lease.port or 0, "/idle/pid"))[1])
        lease.release()
        await wait_for(lambda: state_of(sup, "idle") == "stopped", message="idle stop")
        assert not pid_alive(pid)
        await wait_for(lambda: marker.exists() and "stop idle" in marker.read_text())
        assert marker.read_text().splitlines()[:2] == ["start idle", "stop idle"]
        port2 = await sup.ensure_ready(tenant)
        assert int((await http_get(port2, "/idle/pid"))[1]) != pid
        await sup.shutdown(2.0)
    run(body)


def test_request_in_flight_prevents_idle_stop(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("busy", tmp_path)
        pools = Pools(start_port=port_base(), port_count=60, idle_timeout=0.2)
        sup = Supervisor(make_config(tmp_path, (tenant,), pools=pools), policy=FAST)
        lease = await sup.acquire(tenant)
        await http_get(lease.port or 0, "/busy/slow?s=0.6")  # longer than the idle timeout
        assert state_of(sup, "busy") == "ready"
        lease.release()
        await wait_for(lambda: state_of(sup, "busy") == "stopped")
        await sup.shutdown(2.0)
    run(body)


def test_pool_limit_evicts_least_recently_used(tmp_path: Path) -> None:
    async def body() -> None:
        a, b, c = (make_tenant(n, tmp_path, startup_timeout=0.5) for n in ("a", "b", "c"))
        pools = Pools(start_port=port_base(), port_count=60, max_size=2)
        sup = Supervisor(make_config(tmp_path, (a, b, c), pools=pools), policy=FAST)
        await sup.ensure_ready(a)
        await sup.ensure_ready(b)
        (await sup.acquire(a)).release()  # a is used after b: b is the least recently used
        await sup.ensure_ready(c)
        assert {s["name"]: s["state"] for s in sup.status()} == {
            "a": "ready", "b": "stopped", "c": "ready"}
        assert len(our_descendants()) == 2
        # everyone busy: a fourth start waits, then gives up with 503
        for t in (a, c):
            await sup.acquire(t)
        with pytest.raises(TenantUnavailable):
            await sup.ensure_ready(b)
        await sup.shutdown(2.0)
    run(body)


def test_environment_port_and_server_env(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("env", tmp_path, env={"GREETING": "hi"})
        sup = Supervisor(make_config(tmp_path, (tenant,)), policy=FAST,
                         environ={"PATH": "/usr/bin:/bin", "SERVER_WIDE": "yes"})
        port = await sup.ensure_ready(tenant)
        values = {}
        for name in ("GREETING", "SERVER_WIDE", "PORT", "HOME"):
            values[name] = json.loads((await http_get(port, f"/env/env?name={name}"))[1])
        assert values == {"GREETING": "hi", "SERVER_WIDE": "yes", "PORT": str(port),
                          "HOME": None}
        await sup.shutdown(2.0)
    run(body)


def test_reload_diff_keeps_unchanged_restarts_changed_stops_removed(tmp_path: Path) -> None:
    async def body() -> None:
        same = make_tenant("same", tmp_path)
        changed = make_tenant("changed", tmp_path, env={"V": "1"})
        removed = make_tenant("removed", tmp_path)
        config = make_config(tmp_path, (same, changed, removed))
        sup = Supervisor(config, policy=FAST)
        pids = {}
        for t in (same, changed, removed):
            port = await sup.ensure_ready(t)
            pids[t.name] = int((await http_get(port, "/x/pid"))[1])
        lease = await sup.acquire(changed)  # in flight across the reload
        same2 = make_tenant("same", tmp_path)
        changed2 = make_tenant("changed", tmp_path, env={"V": "2"})
        await sup.apply_config(make_config(tmp_path, (same2, changed2), pools=config.pools))
        await wait_for(lambda: not pid_alive(pids["removed"]), message="removed stopped")
        assert pid_alive(pids["changed"])  # still serving its in-flight request
        lease.release()
        await wait_for(lambda: not pid_alive(pids["changed"]), message="changed drained")
        port = await sup.ensure_ready(same2)
        assert int((await http_get(port, "/x/pid"))[1]) == pids["same"]
        port = await sup.ensure_ready(changed2)
        assert json.loads((await http_get(port, "/x/env?name=V"))[1]) == "2"
        await sup.shutdown(2.0)
        assert our_descendants() == []
    run(body)


def test_shutdown_kills_whole_tree_even_when_term_is_ignored(tmp_path: Path) -> None:
    async def body() -> None:
        child_pidfile = tmp_path / "grandchild.pid"
        stubborn = make_tenant("stubborn", tmp_path,
                               env={"IGNORE_TERM": "1", "SPAWN_CHILD": str(child_pidfile)})
        polite = make_tenant("polite", tmp_path)
        sup = Supervisor(make_config(tmp_path, (stubborn, polite)), policy=FAST)
        await asyncio.gather(sup.ensure_ready(stubborn), sup.ensure_ready(polite))
        grandchild = int(child_pidfile.read_text())
        assert pid_alive(grandchild)
        await sup.shutdown(0.3)
        assert our_descendants() == []
        assert not pid_alive(grandchild)
        assert all(s["state"] == "stopped" for s in sup.status())
        with pytest.raises(TenantUnavailable):
            await sup.ensure_ready(polite)
    run(body)


def test_not_ready_in_time_is_a_launch_failure(tmp_path: Path) -> None:
    async def body() -> None:
        tenant = make_tenant("never", tmp_path, env={"BOOT_DELAY": "30"}, ready_timeout=0.3)
        sup = Supervisor(make_config(tmp_path, (tenant,)),
                         policy=replace(FAST, stop_grace=0.5))
        with pytest.raises(TenantLaunchError):
            await sup.ensure_ready(tenant)
        assert sup._pools[tenant.path].records[0].state is TenantState.STOPPED
        assert our_descendants() == []
        await sup.shutdown(1.0)
    run(body)
